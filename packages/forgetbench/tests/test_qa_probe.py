"""The factuality probe: a question-answer import's splits in the in-domain suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import forgetbench
import kgworld
from forgetbench.cli import app


@pytest.fixture
def qa_folder(tmp_path: Path) -> Path:
    source = tmp_path / "qa.jsonl"
    rows = [
        {"question": f"Which river flows through town {i}?", "answer": f"The Avel {i}",
         "aliases": [f"Avel river {i}"]}
        for i in range(12)
    ]  # fmt: skip
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return kgworld.import_qa(source, tmp_path / "qa", aliases_col="aliases", val_fraction=0.5)


def _alias_replies(model, tokenizer, records, **kwargs):
    """Each record's first alias, boxed: only a verifier that reads the aliases passes it."""
    return [f"\\boxed{{{r['meta']['answer_aliases'][0].upper()}}}" for r in records]


def test_qa_splits_score_answer_or_alias(qa_folder: Path, monkeypatch) -> None:
    monkeypatch.setattr("forgetbench._indomain.generate_replies", _alias_replies)
    scores, _, _ = forgetbench.run_indomain(None, None, qa_folder)
    assert set(scores) == set(forgetbench.QA_SPLITS)  # a QA import: nothing else is scored
    assert {s["verifier"] for s in scores.values()} == {"qa-normalized"}
    assert all(s["score"] == 1.0 for s in scores.values())
    counts = json.loads((qa_folder / "manifest.json").read_text())["counts"]
    assert scores["qa/validation"]["n"] == counts["qa/validation"] > 0
    paper, _, _ = forgetbench.run_indomain(None, None, qa_folder, scorer="paper")
    assert {s["verifier"] for s in paper.values()} == {"qa-paper"}
    assert all(s["score"] == 1.0 for s in paper.values())  # lower-cased alias, exact


def test_eval_config_qa_verifier_reaches_the_suite(qa_folder, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("forgetbench._runner._loader", lambda config: lambda spec: (None, None))
    monkeypatch.setattr("forgetbench._indomain.generate_replies", _alias_replies)
    out = tmp_path / "eval.json"
    args = ["eval", "--model", "x", "--suites", "indomain", "--world", str(qa_folder),
            "--out", str(out), "--set", "qa_verifier=boxed-exact"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())["indomain"]
    assert {data[s]["verifier"] for s in forgetbench.QA_SPLITS} == {"boxed-exact"}
    assert {data[s]["score"] for s in forgetbench.QA_SPLITS} == {0.0}  # upper-cased: no match
    bad = CliRunner().invoke(app, [*args[:-1], "qa_verifier=boxd"])
    assert bad.exit_code == 1 and "qa_verifier" in str(bad.exception)
