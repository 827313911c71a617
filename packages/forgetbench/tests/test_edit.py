"""The edit suite: scores on a world's edit/ split and on an MQuAKE import, metric logic, CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import forgetbench
from forgetbench.cli import app
from mixsd_base import UserError


def _records(folder, split):
    import kgworld

    return kgworld.read_jsonl(folder / f"{split}.jsonl")


def test_run_edit_on_the_tiny_model_is_deterministic(tiny_lm, small_world_dir):
    model, tokenizer = tiny_lm
    run = lambda folder, **kw: forgetbench.run_edit(  # noqa: E731
        model, tokenizer, folder, limit=2, max_new_tokens=6, batch_size=4, **kw
    )
    scores, samples, hashes = run(small_world_dir)
    assert set(scores) == set(forgetbench.EDIT_SPLITS)
    for split, entry in scores.items():
        assert 0.0 <= entry["score"] <= 1.0 and entry["n"] == 2
        assert ("old_answer_share" in entry) == forgetbench.EDIT_SPLITS[split]
    assert len(samples) == 10 and len(hashes) == 4  # edit/rewrite reads edit/train
    assert all(s["task"].startswith("edit/") for s in samples)
    # The edit folder itself works too; greedy decoding gives the same replies again.
    again = run(small_world_dir / "edit", splits=["edit/multihop"])
    assert again[1] == [s for s in samples if s["task"] == "edit/multihop"]


def test_scores_count_new_old_and_alias_answers(
    monkeypatch, small_world_dir, write_jsonl, tmp_path
):
    """The metric logic with scripted replies (no model): new, old, alias, neither."""
    import forgetbench._edit as edit

    folder = tmp_path / "w"
    (folder / "edit").mkdir(parents=True)
    train = _records(small_world_dir, "edit/train")[:4]
    train[2]["meta"]["answer_aliases"] = ["Alias Town"]
    write_jsonl(folder / "edit" / "train.jsonl", train)
    replies = [
        f"It is {train[0]['answer']}. \\boxed{{{train[0]['answer']}}}",  # the new answer
        f"\\boxed{{{train[1]['meta']['old_answer']}}}",  # still the old one
        "\\boxed{Alias Town}",  # an alias of the new answer
        "I do not know.",  # neither
    ]
    monkeypatch.setattr(edit, "generate_replies", lambda *a, **k: replies)
    question_splits = [s for s in forgetbench.EDIT_SPLITS if s != "edit/rewrite"]
    scores, samples, _ = forgetbench.run_edit(None, None, folder, splits=question_splits)
    assert scores["edit/train"]["score"] == 0.5 and scores["edit/train"]["n"] == 4
    assert scores["edit/train"]["old_answer_share"] == 0.25
    assert [s["old"] for s in samples] == [0.0, 1.0, 0.0, 0.0]
    assert "skipped" in scores["edit/locality"] and "skipped" in scores["edit/multihop"]


def test_mquake_import_is_an_edit_folder(monkeypatch, tmp_path):
    import forgetbench._edit as edit
    import kgworld

    cases = [
        {
            "requested_rewrite": [
                {
                    "prompt": "{} is a citizen of",
                    "subject": "Danielle Darrieux",
                    "target_new": {"str": "Japan"},
                    "target_true": {"str": "France"},
                }
            ],
            "questions": ["What is the capital of the country Danielle Darrieux is a citizen of?"],
            "answer": "Paris",
            "answer_alias": ["City of Light"],
            "new_answer": "Tokyo",
        }
    ]
    source = tmp_path / "mquake.json"
    source.write_text(json.dumps(cases))
    out = kgworld.import_mquake(source, tmp_path / "mq")
    monkeypatch.setattr(edit, "generate_replies", lambda *a, **k: ["Still \\boxed{City of Light}"])
    splits = ["edit/train", "edit/paraphrase", "edit/multihop"]
    scores, _, hashes = forgetbench.run_edit(None, None, out, splits=splits)
    assert scores["edit/multihop"]["score"] == 0.0
    assert scores["edit/multihop"]["old_answer_share"] == 1.0  # an old alias counts as old
    assert "skipped" in scores["edit/paraphrase"] and len(hashes) == 2


def test_missing_edit_folder_and_bad_records_are_one_line(tmp_path, small_world_dir, write_jsonl):
    with pytest.raises(forgetbench.EvalError, match="no edit/ folder"):
        forgetbench.run_edit(None, None, tmp_path)
    (tmp_path / "edit").mkdir()
    record = _records(small_world_dir, "edit/train")[0]
    del record["meta"]["old_answer"]
    write_jsonl(tmp_path / "edit" / "train.jsonl", [record])

    def replies(model, tokenizer, records, **kwargs):
        return ["x"] * len(records)

    with pytest.MonkeyPatch.context() as patch:
        import forgetbench._edit as edit

        patch.setattr(edit, "generate_replies", replies)
        with pytest.raises(forgetbench.EvalError, match=r"train\.jsonl: record 1: field 'meta"):
            forgetbench.run_edit(None, None, tmp_path, splits=["edit/train"])


def test_config_keeps_edit_opt_in():
    config = forgetbench.EvalConfig(model="m", out="o.json", world=None, suites=["heldout"])
    assert "edit" not in forgetbench.EvalConfig(model="m", out="o.json", world=".").suites
    assert "edit" in forgetbench.SUITES and config.edits is None
    with pytest.raises(forgetbench.EvalError, match="edit suite needs --world or --edits"):
        forgetbench.EvalConfig(model="m", out="o.json", suites=["edit"])


def test_cli_eval_suite_edit(tiny_model_dir, small_world_dir, tmp_path):
    out = tmp_path / "evals" / "edit.json"
    config = tmp_path / "eval.yaml"
    config.write_text("indomain_max_new_tokens: 4\nbatch_size: 4\n")
    args = ["eval", "--model", str(tiny_model_dir), "--suite", "edit", "--edits", str(small_world_dir),
            "--limit", "1", "--config", str(config), "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "edit/multihop" in result.output and "old answer" in result.output
    data = json.loads(out.read_text())
    assert set(data["edit"]) == set(forgetbench.EDIT_SPLITS)
    assert "heldout" not in data and "indomain" not in data
    assert data["manifest"]["config"]["suites"] == ["edit"]
    assert any(p.endswith("edit/locality.jsonl") for p in data["manifest"]["data_sha256"])
    samples = [json.loads(x) for x in (out.parent / "edit.samples.jsonl").read_text().splitlines()]
    assert len(samples) == 5


def test_rewrite_scores_the_bare_completion_prompt(
    monkeypatch, small_world_dir, write_jsonl, tmp_path
):
    """edit/rewrite fills each rewrite prompt with its subject and checks the new and the old
    object as greedy continuations (the matcher is scripted here; mixsd-core tests it on a model)."""
    import mixsd_core._continuation as continuation

    records = _records(small_world_dir, "edit/train")[:3]
    prompts = [r["meta"]["rewrite"]["prompt"].replace("{}", r["meta"]["subject"]) for r in records]
    greedy = {  # what the "model" writes after each prompt: new, old, neither
        prompts[0]: records[0]["answer"],
        prompts[1]: records[1]["meta"]["old_answer"],
        prompts[2]: "something else",
    }
    seen = []

    def scripted(model, tokenizer, prompts, continuations, *, batch_size):
        seen.append(list(prompts))
        return [
            {"top1": greedy[p] == c, "exact": greedy[p] == c}
            for p, c in zip(prompts, continuations, strict=True)
        ]

    monkeypatch.setattr(continuation, "greedy_continuation_matches", scripted)
    (tmp_path / "edit").mkdir()
    train = tmp_path / "edit" / "train.jsonl"
    write_jsonl(train, records)
    scores, samples, _ = forgetbench.run_edit(None, None, tmp_path, splits=["edit/rewrite"])
    entry = scores["edit/rewrite"]
    assert seen[0] == prompts and [s["acc"] for s in samples] == [1.0, 0.0, 0.0]
    assert (
        entry["score"] == pytest.approx(1 / 3)
        and entry["n"] == 3
        and entry["top1"] == entry["score"]
    )
    assert entry["old_answer_share"] == pytest.approx(1 / 3)
    assert entry["verifier"] == "greedy-continuation"
    assert [s["old"] for s in samples] == [0.0, 1.0, 0.0]
    del records[1]["meta"]["rewrite"]
    write_jsonl(train, records)
    with pytest.raises(UserError, match=r"record 2: missing field 'meta.rewrite'"):
        forgetbench.run_edit(None, None, tmp_path, splits=["edit/rewrite"])
