"""``mixsd run`` on a question-answer file (SimpleQA's CSV layout): import -> rollouts (sampled,
intersection filter) -> training -> in-domain and held-out-question evaluation -> report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mixsd.cli import app

MINI = Path(__file__).resolve().parents[2] / "kgworld" / "tests" / "data" / "mini_simpleqa.csv"


def _config(tmp: Path, model: Path, **changes) -> Path:
    config = {
        "out": str(tmp / "run"),
        "model": str(model),
        "world": {"qa": {"file": str(MINI), "val_fraction": 0.3}},
        "data": {"split": "qa/train", "limit": 6},
        "methods": ["base", "sft", "mixsd@0.3", "mixsd@0.5"],
        "rollout": {
            "batch_size": 6,
            "max_new_tokens": 6,
            "max_retries": 1,
            "temperature": 0.6,
            "verifier": "numeric-answers",
            "filter": "intersection",
        },
        "train": {
            "max_steps": 1,
            "save_steps": 1,
            "per_device_train_batch_size": 2,
            "global_batch_size": 2,
            "warmup_steps": 0,
            "eval_max_new_tokens": 4,
            "eval_limit": 2,
        },
        # The paper's checkpoint rule: every checkpoint also validated on qa/validation.
        "select": "paper",
        "eval": {"suites": ["indomain"], "limit": 2, "indomain_max_new_tokens": 4},
        "nll": {"batch_size": 6},
        "fisher": None,
    }
    config.update(changes)
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _numeric(answer: str) -> bool:
    return answer.replace(",", "").replace(".", "").isdigit()


@pytest.fixture(autouse=True)
def numeric_answers_pass() -> Iterator[None]:
    """A random tiny model never states the answer: a verifier that passes every rollout of a
    question with a numeric answer, at every alpha, and no other (so the filter has both)."""
    import kgworld

    with kgworld.VERIFIERS.temporary("numeric-answers", lambda reply, answer: _numeric(answer)):
        yield


@pytest.mark.slow
def test_qa_file_end_to_end(tmp_path: Path, tiny_model_dir: Path) -> None:
    result = CliRunner().invoke(app, ["run", str(_config(tmp_path, tiny_model_dir)), "--quiet"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    manifest = json.loads((run / "world/manifest.json").read_text())
    assert manifest["kind"] == "qa-import" and manifest["counts"]["rows"] == 30
    records = [json.loads(x) for x in (run / "data/qa/train.jsonl").read_text().splitlines()]
    held_out = (run / "data/qa/validation.jsonl").read_text().splitlines()
    assert len(records) == 6 and len(held_out) == manifest["counts"]["qa/validation"] > 0

    # Intersection: every MixSD file holds every row in order; numeric answers (verified at
    # both alphas) keep their sampled mixed targets, the others train on the ground truth.
    numeric = {r["id"] for r in records if _numeric(r["answer"])}
    assert 0 < len(numeric) < len(records)
    index = json.loads((run / "run.json").read_text())
    for alpha in ("0.3", "0.5"):
        path = Path(index["rollouts"][alpha])
        assert path.name == f"mixsd-a{alpha}.intersection.jsonl"
        rows = [json.loads(x) for x in path.read_text().splitlines()]
        assert [r["id"] for r in rows] == [r["id"] for r in records]
        for row, record in zip(rows, records, strict=True):
            assert row["origin"] == ("mixed" if record["id"] in numeric else "ground-truth")
            if row["origin"] == "ground-truth":
                assert row["target"] == record["target"] and "target_ids" not in row
            else:
                assert "target_ids" in row
        selection = json.loads((run / f"train/mixsd-a{alpha}/selection.json").read_text())
        assert selection["rule"] == "paper"
    counts = json.loads((run / "rollouts/intersection.json").read_text())
    assert (counts["rows"], counts["mixed"]) == (6, len(numeric))

    # In-domain: the trained questions and the held-out ones (the factuality probe), scored
    # with the QA verifier, for the base and every trained method.
    for label in ("base", "sft", "mixsd-a0.3", "mixsd-a0.5"):
        indomain = json.loads((run / f"eval/{label}.json").read_text())["indomain"]
        assert set(indomain) == {"qa/train", "qa/validation"}
        assert {s["verifier"] for s in indomain.values()} == {"qa-normalized"}
    report = (run / "report.md").read_text()
    assert "| mixsd-a0.5 |" in report
    assert (
        "## In-domain verifiers" in report and "`qa-normalized`: qa/train, qa/validation" in report
    )
    assert f"{len(numeric)} of 6 rows were verified at every alpha" in report


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"data": {"split": "kgfact/train"}}, r"field 'data\.split': a QA world has the splits"),
        (
            {"rollout": {"filter": "union", "verifier": "numeric-answers"}},
            r"run.yaml:\d+: field 'rollout\.filter': unknown filter; choose one of: none, inter",
        ),
        (
            {"world": {"qa": str(MINI), "preset": "small"}},
            r"field 'world\.qa': a QA world takes no other settings \(preset\)",
        ),
        (
            {"world": {"qa": {"file": str(MINI), "val_fraction": 1.5}}},
            r"field 'world\.qa\.val_fraction': must be in \[0, 1\)",
        ),
        ({"world": {"qa": {"question": "q"}}}, r"field 'world\.qa\.question': unknown key"),
    ],
)
def test_bad_qa_settings_fail_at_load(
    tmp_path: Path, tiny_model_dir: Path, changes: dict, error: str
) -> None:
    from mixsd._run_config import load_run_config
    from mixsd_base import UserError

    with pytest.raises(UserError, match=error):
        load_run_config(_config(tmp_path, tiny_model_dir, **changes))


def test_missing_qa_file_names_the_config_line(tmp_path: Path, tiny_model_dir: Path) -> None:
    config = _config(tmp_path, tiny_model_dir, world={"qa": str(tmp_path / "simple_qa.csv")})
    result = CliRunner().invoke(app, ["run", str(config), "--quiet"])
    assert result.exit_code != 0
    message = str(result.exception) if result.exception else result.output
    assert f"{config}:" in message and "field 'world.qa'" in message
    assert f"{tmp_path / 'simple_qa.csv'} not found" in message


def test_a_bad_row_stops_the_run_naming_row_and_column(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    bad = tmp_path / "qa.csv"
    bad.write_text("problem,answer\nWho won?,Ann\nWhere?,\n")
    config = _config(tmp_path, tiny_model_dir, world={"qa": str(bad)})
    result = CliRunner().invoke(app, ["run", str(config), "--quiet"])
    assert result.exit_code != 0
    message = str(result.exception) if result.exception else result.output
    assert f"{bad}:3: field 'answer': row 2: empty value" in message
    assert not (tmp_path / "run" / "world" / "manifest.json").exists()


@pytest.mark.parametrize("mode", ["intersection", "fill"])
def test_intersection_falls_back_to_trainable_ground_truth_rows(
    tmp_path: Path, tiny_model_dir: Path, tiny_tokenizer, mode: str
) -> None:
    """An alpha whose rollouts kept nothing still takes part: every row falls back to a
    ground-truth row the MixSD trainer reads (prompts rendered by this tokenizer), in every file
    (``intersection``) or where that file's rollouts dropped it (``fill``)."""
    from types import SimpleNamespace

    import kgworld
    from mixsd._context import Artifact, RunPaths, TrainingData
    from mixsd._qa import filter_rollouts
    from mixsd._units import UnitRunner
    from mixsd_base import write_jsonl
    from mixsd_core import PromptConfig, render_prompts
    from mixsd_train import read_rollouts_file

    records = kgworld.load_qa(MINI, val_fraction=0).train[:3]
    data_file = tmp_path / "run/data/qa/train.jsonl"
    write_jsonl(data_file, records)
    naive, expert = render_prompts(tiny_tokenizer, records[0], PromptConfig("paper", "kgfunc"))
    mixed = {  # verified at 0.3 only
        **records[0],
        **{"target": "mixed", "verified": True, "naive_prompt": naive, "expert_prompt": expert},
    }
    (tmp_path / "run/rollouts").mkdir(parents=True)
    groups = {"mixsd-a0.3": (0.3, {}), "mixsd-a0.5": (0.5, {})}
    write_jsonl(tmp_path / "run/rollouts/mixsd-a0.3.jsonl", [mixed])
    (tmp_path / "run/rollouts/mixsd-a0.5.jsonl").write_text("")
    ctx = SimpleNamespace(
        config=SimpleNamespace(
            rollout=SimpleNamespace(prompt_style="paper", task="kgfunc"),
            seed=0,
            rollout_groups=lambda: groups,
        ),
        paths=RunPaths(tmp_path / "run"),
        units=UnitRunner(tmp_path / "run", echo=lambda line: None),
        base_model=str(tiny_model_dir),
        base_digest="tiny",
    )
    rollouts = {
        f"mixsd-a{a}": Artifact(tmp_path / f"run/rollouts/mixsd-a{a}.jsonl", f"d{a}")
        for a in (0.3, 0.5)
    }
    data = TrainingData(data_file.parent.parent, data_file, "data")
    filtered = filter_rollouts(ctx, data, rollouts, mode)  # type: ignore[arg-type]
    assert sorted(filtered) == ["mixsd-a0.3", "mixsd-a0.5"]
    for label, artifact in filtered.items():
        alpha = float(label.removeprefix("mixsd-a"))
        assert artifact.path.name == f"{label}.{mode}.jsonl"
        rows = read_rollouts_file(artifact.path, tiny_tokenizer)  # what MixSD trains on
        assert [r["id"] for r in rows] == [r["id"] for r in records]
        keeps_mixed = mode == "fill" and alpha == 0.3
        expected = ["mixed", *(r["target"] for r in records[1:])] if keeps_mixed else None
        assert [r["target"] for r in rows] == (expected or [r["target"] for r in records])
        fallback = rows[1:] if keeps_mixed else rows
        assert {(r["origin"], r["alpha"], r["task"]) for r in fallback} == {
            ("ground-truth", alpha, "kgfunc")
        }
        assert rows[0]["origin"] == ("mixed" if keeps_mixed else "ground-truth")
        assert "reference solution" in rows[-1]["expert_prompt"]  # the KGFunc wording
    summary = json.loads((tmp_path / f"run/rollouts/{mode}.json").read_text())
    counts = {"mixed": 0, "ground_truth": 3} if mode == "intersection" else {}
    assert summary == {"rows": 3, **counts, "verified": {"0.3": 1, "0.5": 0}}
    # A third method joins the run: a fill file's digest (what training and scoring key on)
    # stays, so the others are not retrained; an intersection file's changes with the others.
    groups["mixsd-a0.7"] = (0.7, {})
    (tmp_path / "run/rollouts/mixsd-a0.7.jsonl").write_text("")
    rollouts["mixsd-a0.7"] = Artifact(tmp_path / "run/rollouts/mixsd-a0.7.jsonl", "d0.7")
    again = filter_rollouts(ctx, data, rollouts, mode)  # type: ignore[arg-type]
    assert sorted(again) == ["mixsd-a0.3", "mixsd-a0.5", "mixsd-a0.7"]
    same = again["mixsd-a0.3"].digest == filtered["mixsd-a0.3"].digest
    assert same == (mode == "fill")
    assert again["mixsd-a0.3"].digest != again["mixsd-a0.5"].digest or mode == "intersection"


@pytest.mark.parametrize(
    ("mode", "summary", "expected"),
    [
        (
            "intersection",
            {"rows": 3, "mixed": 1, "ground_truth": 2, "verified": {"0.3": 2, "0.5": 1}},
            "1 of 3 rows were verified at every alpha and keep their mixed targets; the other 2 "
            "train on the ground-truth target in every MixSD file (verified per alpha: 0.3: 2, "
            "0.5: 1).",
        ),
        (
            "fill",
            {"rows": 3, "verified": {"0.3": 2, "0.5": 1}},
            "Each MixSD file keeps the targets its rollouts verified and trains on the "
            "ground-truth target for the rest of the 3 rows (verified: 0.3: 2, 0.5: 1).",
        ),
    ],
)
def test_report_notes_the_filter(
    tmp_path: Path, mode: str, summary: dict[str, object], expected: str
) -> None:
    from mixsd._qa import SUMMARIES, report_lines

    folder = tmp_path / "rollouts"
    folder.mkdir()
    (folder / SUMMARIES[mode]).write_text(json.dumps(summary))
    files = {a: str(folder / f"mixsd-a{a}.{mode}.jsonl") for a in ("0.3", "0.5")}
    assert report_lines({"rollouts": files}) == [f"## Rollout filter: {mode}", "", expected, ""]
    # unfiltered files: no note
    assert report_lines({"rollouts": {"0.3": str(folder / "mixsd-a0.3.jsonl")}}) == []
