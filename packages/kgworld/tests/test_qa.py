"""Question-answer files (SimpleQA's CSV, JSONL, Parquet) as records: ``kgworld import-qa``."""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import kgworld
from kgworld.cli import app

MINI = Path(__file__).parent / "data" / "mini_simpleqa.csv"
runner = CliRunner()


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write_csv(path: Path, rows: list[list[str]], header=("metadata", "problem", "answer")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_import_simpleqa_csv(tmp_path: Path) -> None:
    out = tmp_path / "qa"
    result = runner.invoke(
        app, ["import-qa", str(MINI), "--out", str(out), "--val-fraction", "0.3"]
    )
    assert result.exit_code == 0, result.output
    train, validation = _lines(out / "qa/train.jsonl"), _lines(out / "qa/validation.jsonl")
    assert len(train) + len(validation) == 30 and train and validation
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == kgworld.QA_KIND
    assert manifest["source_sha256"] == hashlib.sha256(MINI.read_bytes()).hexdigest()
    assert manifest["counts"] == {
        "rows": 30,
        "qa/train": len(train),
        "qa/validation": len(validation),
        "skipped": 0,
        "duplicates": 0,
    }
    assert manifest["columns"] == {"question": "problem", "answer": "answer", "aliases": None}
    for name, records in (("train", train), ("validation", validation)):
        assert all(
            set(r) == {"id", "prompt", "target", "answer", "context", "split", "meta"}
            for r in records
        )
        assert {r["split"] for r in records} == {name}
    first = next(r for r in train + validation if r["meta"]["row"] == 1)
    assert first["id"] == "qa-000001"
    assert first["prompt"] == (
        "Which city is the capital of the invented republic of Velmora?\n\n"
        + kgworld.QA_INSTRUCTION
    )
    assert first["target"] == "The answer is Ostrava Nova.\n\n\\boxed{Ostrava Nova}"
    assert first["meta"]["fields"]["metadata"]["topic"] == "Geography"  # the dict SimpleQA spells
    # The canonical target passes the rollouts' (authors') verifier and the open-domain one.
    for record in train + validation:
        assert kgworld.verify(record["target"], record["answer"], "boxed-exact")
        assert kgworld.verify(record["target"], record["answer"], "qa-normalized")
    with pytest.raises(kgworld.DataError, match="a QA import"):
        kgworld.load(out)


def test_split_is_by_question_and_seed(tmp_path: Path) -> None:
    """Same file and seed: same bytes; rows reordered: each question keeps its split."""
    a = kgworld.load_qa(MINI, val_fraction=0.3)
    b = kgworld.load_qa(MINI, val_fraction=0.3)
    assert a.train == b.train and a.validation == b.validation
    with MINI.open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    flipped = _write_csv(tmp_path / "flipped.csv", rows[::-1], header)
    c = kgworld.load_qa(flipped, val_fraction=0.3)
    held = {r["meta"]["question"] for r in a.validation}
    assert {r["meta"]["question"] for r in c.validation} == held
    other = kgworld.load_qa(MINI, val_fraction=0.3, seed=7)
    assert {r["meta"]["question"] for r in other.validation} != held
    assert all(kgworld.in_validation(q, 42, 0.3) for q in held)
    assert not kgworld.load_qa(MINI, val_fraction=0).validation


def test_jsonl_with_aliases_and_named_columns(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    rows = [
        {"q": "Where is Velmora's parliament?", "a": "Ostrava Nova", "alt": ["Ostrava"]},
        {"q": "How many moons has Quorath?", "a": 17, "alt": "seventeen | 17 moons"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = kgworld.load_qa(path, question_col="q", answer_col="a", aliases_col="alt")
    records = data.train + data.validation
    assert [r["answer"] for r in records] == ["Ostrava Nova", "17"]
    assert records[1]["meta"]["answer_aliases"] == ["seventeen", "17 moons"]
    assert kgworld.record_answers(records[1]) == ["17", "seventeen", "17 moons"]


def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "qa.parquet"
    pq.write_table(pa.table({"question": ["Who designed Emberfall?"], "answer": ["Mira"]}), path)
    data = kgworld.load_qa(path)
    assert [r["answer"] for r in data.train + data.validation] == ["Mira"]


def test_parquet_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "qa.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(kgworld.DataError, match="Parquet needs pyarrow"):
        kgworld.load_qa(path)


GOOD = ["{}", "Who painted Tide of Lanterns?", "Amalia Ferrand"]


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, what the error must say: row, column and problem)."""
    files = {
        "missing column": (
            _write_csv(tmp / "nocol.csv", [["{}", "Q?"]], header=("metadata", "problem")),
            "field 'answer': no column 'answer'",
        ),
        "empty answer": (
            _write_csv(tmp / "empty.csv", [GOOD, ["{}", "Who won?", "  "]]),
            "field 'answer': row 2: empty value",
        ),
        "conflicting duplicate": (
            _write_csv(tmp / "dup.csv", [GOOD, ["{}", GOOD[1], "Someone Else"]]),
            "field 'answer': row 2: the question of row 1 again",
        ),
        "truncated row": (
            _write_csv(tmp / "short.csv", [GOOD, ["{}", "Who won?"]]),
            "field 'answer': row 2: truncated row: 2 of 3 columns",
        ),
    }
    cut = tmp / "cut.csv"
    cut.write_text('metadata,problem,answer\n{},Who?,Ann\n{},"Who won the cup?,Dun')
    files["cut inside a quote"] = (cut, "cut.csv:3: row 2: truncated row")
    latin = tmp / "latin1.csv"
    latin.write_bytes(
        "metadata,problem,answer\n{},Who?,Ann\n{},Where?,Z\xfcrich\n".encode("latin-1")
    )
    files["not UTF-8"] = (latin, "latin1.csv:3: field 'answer': row 2: not UTF-8 text (byte 0xfc)")
    jsonl = tmp / "cut.jsonl"
    jsonl.write_text('{"question": "Who?", "answer": "Ann"}\n{"question": "Wh')
    files["truncated JSONL line"] = (jsonl, "cut.jsonl:2: row 2: truncated row")
    return files


@pytest.mark.parametrize(
    "name",
    [
        "missing column",
        "empty answer",
        "conflicting duplicate",
        "truncated row",
        "cut inside a quote",
        "not UTF-8",
        "truncated JSONL line",
    ],
)
def test_bad_input_is_one_error_and_writes_nothing(tmp_path: Path, name: str) -> None:
    path, expected = _bad_files(tmp_path)[name]
    out = tmp_path / "out"
    with pytest.raises(kgworld.DataError) as info:
        kgworld.import_qa(path, out)
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message, message
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_bad_input_on_the_command_line_is_one_line(tmp_path: Path) -> None:
    import subprocess

    path, expected = _bad_files(tmp_path)["empty answer"]
    done = subprocess.run(
        [sys.executable, "-m", "kgworld", "import-qa", str(path), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == f"error: {path}:3: {expected}"


def test_skip_bad_rows_reports_them(tmp_path: Path) -> None:
    rows = [GOOD, ["{}", "Who won?", ""], ["{}", GOOD[1], "Other"], ["{}", "Where?"], GOOD]
    path = _write_csv(tmp_path / "mixed.csv", [*rows, ["{}", "Which year?", "1889"]])
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["import-qa", str(path), "--out", str(out), "--skip-bad-rows", "--val-fraction", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "skipped row 2 (line 3), column 'answer': empty value" in result.output
    assert "skipped row 3 (line 4), column 'answer': the question of row 1 again" in result.output
    assert "skipped row 4 (line 5), column 'answer': truncated row" in result.output
    assert "2 train, 0 validation (3 skipped, 1 duplicates)" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["row"] for s in manifest["skipped"]] == [2, 3, 4]
    assert [r["answer"] for r in _lines(out / "qa/train.jsonl")] == ["Amalia Ferrand", "1889"]


def test_unknown_file_type(tmp_path: Path) -> None:
    path = tmp_path / "qa.tsv"
    path.write_text("problem\tanswer\n")
    with pytest.raises(kgworld.DataError, match=r"unknown file type '\.tsv'"):
        kgworld.load_qa(path)
