"""In-domain accuracy, reference loss and the full `eval` run on the tiny model."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import forgetbench
from forgetbench.cli import app


def test_indomain_is_deterministic_and_bounded(tiny_lm, small_world_dir):
    model, tokenizer = tiny_lm
    run = lambda: forgetbench.run_indomain(  # noqa: E731
        model, tokenizer, small_world_dir, limit=2, max_new_tokens=6, batch_size=4
    )
    scores, samples, hashes = run()
    assert set(scores) == set(forgetbench.INDOMAIN_SPLITS)
    assert all(0.0 <= s["score"] <= 1.0 and s["n"] == 2 for s in scores.values())
    assert scores["kgfunc/test"]["verifier"] == "integer"
    assert len(samples) == 12 and len(hashes) == 6
    assert run()[1] == samples  # greedy: the same replies again


def _paper_only_replies(model, tokenizer, records, **kwargs):
    """Replies the authors' scorer passes and ours fails: the KGFact answer in a box with more
    words (loose substring), the KGFunc answer as a simple fraction (no integer reads it)."""
    return [
        f"\\boxed{{\\frac{{{2 * int(r['answer'])}}}{{2}}}}"
        if r["id"].startswith("kgfunc")
        else f"\\boxed{{{r['answer']}, a place}}"
        for r in records
    ]


def test_indomain_scorer_paper_uses_the_authors_verifiers(small_world_dir, monkeypatch):
    monkeypatch.setattr("forgetbench._indomain.generate_replies", _paper_only_replies)
    paper, _, _ = forgetbench.run_indomain(None, None, small_world_dir, scorer="paper", limit=3)
    assert {split: s["verifier"] for split, s in paper.items()} == {
        "kgfact/train": "extract-loose",
        "kgfact/paraphrase": "extract-loose",
        "kgfact/twohop": "extract-loose",
        "kgfact/retrieval": "extract-loose",
        "kgfunc/test": "extract-strict",
        "kgfunc/unseen": "extract-strict",
    }
    assert all(s["score"] == 1.0 and s["n"] == 3 for s in paper.values())
    ours, _, _ = forgetbench.run_indomain(None, None, small_world_dir, limit=3)  # the default
    assert {split: s["verifier"] for split, s in ours.items()} == {
        **dict.fromkeys(("kgfact/train", "kgfact/paraphrase"), "boxed-or-final-sentence"),
        **dict.fromkeys(("kgfact/twohop", "kgfact/retrieval"), "boxed-or-final-sentence"),
        **dict.fromkeys(("kgfunc/test", "kgfunc/unseen"), "integer"),
    }
    assert all(s["score"] == 0.0 for s in ours.values())
    with pytest.raises(forgetbench.EvalError, match="unknown in-domain scorer 'papr'"):
        forgetbench.run_indomain(None, None, small_world_dir, scorer="papr")


@pytest.mark.parametrize(("scorer", "score"), [(None, 0.0), ("paper", 1.0)])
def test_eval_config_indomain_scorer_reaches_the_suite(
    scorer, score, small_world_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr("forgetbench._runner._loader", lambda config: lambda spec: (None, None))
    monkeypatch.setattr("forgetbench._indomain.generate_replies", _paper_only_replies)
    out = tmp_path / "eval.json"
    args = ["eval", "--model", "x", "--suites", "indomain", "--world", str(small_world_dir),
            "--limit", "2", "--out", str(out)]  # fmt: skip
    if scorer is not None:
        args += ["--set", f"indomain_scorer={scorer}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["manifest"]["config"]["indomain_scorer"] == (scorer or "ours")
    assert data["indomain"]["kgfunc/test"]["verifier"] == (
        "extract-strict" if scorer else "integer"
    )
    assert {s["score"] for s in data["indomain"].values()} == {score}


@pytest.mark.parametrize(("extra", "limit"), [([], 2), (["--set", "heldout_limit=7"], 7)])
def test_heldout_limit_sets_the_held_out_questions_apart_from_the_limit(
    extra, limit, tmp_path, monkeypatch
):
    seen = {}

    def fake_heldout(model, tokenizer, tasks, *, limit, **kwargs):
        seen["limit"] = limit
        return {t: {"score": 0.5, "n": limit} for t in tasks}, {}, {}

    monkeypatch.setattr("forgetbench._runner._loader", lambda config: lambda spec: (None, None))
    monkeypatch.setattr("forgetbench._heldout.run_heldout", fake_heldout)
    out = tmp_path / "eval.json"
    args = ["eval", "--model", "x", "--suites", "heldout", "--tasks", "fb_mmlu_ll",
            "--limit", "2", "--out", str(out), *extra]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert seen["limit"] == limit
    assert json.loads(out.read_text())["heldout"]["fb_mmlu_ll"]["n"] == limit


def test_refloss_of_the_base_is_zero_and_cached(tiny_lm, tiny_model_dir, tmp_path):
    model, tokenizer = tiny_lm
    loads = []

    def load(spec):
        loads.append(spec)
        return tiny_lm

    kwargs = dict(load=load, n_prompts=3, max_new_tokens=5, cache_dir=tmp_path)
    first = forgetbench.run_refloss(model, tokenizer, str(tiny_model_dir), **kwargs)
    assert loads == [str(tiny_model_dir)] and first["delta_l_ref"] == pytest.approx(0.0, abs=1e-5)
    assert first["l_ref"] > 0 and first["n_prompts"] == 3
    again = forgetbench.run_refloss(model, tokenizer, str(tiny_model_dir), **kwargs)
    assert loads == [str(tiny_model_dir)]  # the reference responses came from the cache
    assert again["l_ref"] == pytest.approx(first["l_ref"])
    assert first["delta_l_ref_se"] == pytest.approx(0.0, abs=1e-6)  # the base against itself


def test_delta_l_ref_se_is_the_ratio_estimators_standard_error():
    from forgetbench._refloss import delta_l_ref_se

    base = [(10.0, 5), (4.0, 2), (9.0, 3)]
    mine = [(12.0, 5), (4.5, 2), (8.0, 3)]
    # By hand: d = (2, 0.5, -1), ΔL = 1.5 / 10 = 0.15; residuals d - 0.15 t = 1.25, 0.2, -1.45.
    spread = 1.25**2 + 0.2**2 + 1.45**2
    assert delta_l_ref_se(mine, base) == pytest.approx((3 / 2 * spread) ** 0.5 / 10)
    assert delta_l_ref_se(mine[:1], base[:1]) is None  # one prompt has no spread


def test_retention():
    ckpt = {"a": {"score": 0.3}, "b": {"score": 0.1}, "c": {"skipped": "no data"}}
    base = {"a": {"score": 0.6}, "b": {"score": 0.0}, "c": {"score": 0.5}}
    assert forgetbench.retention(ckpt, base) == {
        "a": 50.0,
        "b": None,
        "average": pytest.approx(400 / 6),
    }


@pytest.mark.slow
def test_cli_eval_end_to_end(tiny_model_dir, small_world_dir, tmp_path):
    out = tmp_path / "evals" / "tiny.json"
    args = ["eval", "--model", str(tiny_model_dir), "--world", str(small_world_dir), "--limit", "1",
            "--tasks", "fb_gsm8k100,fb_humaneval,fb_math500", "--max-new-tokens", "8",
            "--base-model", str(tiny_model_dir), "--out", str(out), "--data-dir", str(tmp_path)]  # fmt: skip
    config = tmp_path / "eval.yaml"
    config.write_text(f"indomain_max_new_tokens: 4\nref_max_new_tokens: 4\ncache_dir: {tmp_path}\n")
    result = CliRunner().invoke(app, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    held = data["heldout"]
    assert 0.0 <= held["fb_gsm8k100"]["score"] <= 1.0 and held["fb_gsm8k100"]["n"] == 1
    assert "allow-code-exec" in held["fb_humaneval"]["skipped"]
    assert "no data" in held["fb_math500"]["skipped"]
    assert sum(data["taxonomy"]["fb_gsm8k100"].values()) == 1 - held["fb_gsm8k100"]["score"]
    # The tiny model is a Llama: greedy under the default protocol, recorded as such.
    assert data["heldout_protocol"] == {"protocol": "greedy", "decoding": "greedy",
                                        "model_type": "llama", "temperature": 0.0, "seed": 0}  # fmt: skip
    decoding = held["fb_gsm8k100"]["decoding"]
    assert (decoding["do_sample"], decoding["samples"], decoding["max_new_tokens"]) == (False, 1, 8)
    assert set(data["indomain"]) == set(forgetbench.INDOMAIN_SPLITS)
    assert data["refloss"]["delta_l_ref"] == pytest.approx(0.0, abs=1e-5)
    manifest = data["manifest"]
    assert manifest["config"]["indomain_max_new_tokens"] == 4  # from the YAML
    assert any(p.endswith("cases.jsonl") for p in manifest["data_sha256"])
    assert all(len(h) == 64 for h in manifest["data_sha256"].values())
    assert manifest["versions"]["lm-eval"] != "not installed"
    samples = [json.loads(x) for x in (out.parent / "tiny.samples.jsonl").read_text().splitlines()]
    assert {s["task"] for s in samples} >= {"fb_gsm8k100", "kgfact/train", "kgfunc/unseen"}
    # Per item, for paired comparisons: the held-out task's one problem, not in-domain samples.
    items = forgetbench.heldout_item_scores(out)
    assert list(items) == ["fb_gsm8k100"] and len(items["fb_gsm8k100"]) == 1
    assert list(items["fb_gsm8k100"].values()) == [held["fb_gsm8k100"]["score"]]

    # Retention against the same run: 100% wherever the base scored above zero.
    out2 = tmp_path / "again.json"
    again = ["eval", "--model", str(tiny_model_dir), "--suites", "heldout", "--tasks", "fb_gsm8k100",
             "--limit", "1", "--max-new-tokens", "8", "--base", str(out), "--out", str(out2)]  # fmt: skip
    result = CliRunner().invoke(app, again)
    assert result.exit_code == 0, result.output
    assert "fb_gsm8k100" in json.loads(out2.read_text())["retention"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--suites", "heldout,bogus"], "field 'suites': unknown suite(s) ['bogus']"),
        (["--suites", "indomain"], "field 'world': the indomain suite needs --world"),
        (["--suites", "heldout", "--limit", "0"], "field 'limit': must be >= 1"),
        (["--world", "/nonexistent/world"], "field 'world': /nonexistent/world not found"),
        (["--config", "/nonexistent.yaml"], "/nonexistent.yaml: config file not found"),
        (["--set", "batch_sise=2"], "field 'batch_sise': unknown key (did you mean 'batch_size'?)"),
        (["--suites", "refloss"], "unknown model 'x'"),  # mixsd_core's error, as it is
        (["--tasks", "fb_gsm8k10"], "field 'tasks': unknown held-out task 'fb_gsm8k10' (did you"),
        (
            ["--suites", "heldout", "--protocol", "papr"],
            "field 'protocol': must be one of ['greedy', 'paper', 'sampled']",
        ),
        (["--set", "samples.fb_aime2=4"], "field 'samples.fb_aime2': unknown held-out task"),
        (["--set", "samples.fb_aime24=0"], "field 'samples.fb_aime24': must be >= 1, got 0"),
        (["--suites", "heldout", "--temperature", "0"], "field 'temperature': must be in (0, inf)"),
        (
            ["--suites", "heldout", "--set", "indomain_scorer=papr"],
            "field 'indomain_scorer': must be one of ['ours', 'paper']",
        ),
    ],
)
def test_eval_bad_input_is_one_line(args, message, tmp_path, monkeypatch, capsys):
    """Through the console entry point: one line naming the file / field, exit code 1."""
    import sys

    from forgetbench.cli import main

    if "--tasks" in args:  # the task is checked once the model is tiny_lm: use a tiny one
        pytest.importorskip("torch")
        monkeypatch.setattr("forgetbench._runner._loader", lambda config: lambda spec: (None, None))
    argv = ["forgetbench", "eval", "--model", "x", "--out", str(tmp_path / "o.json"), *args]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and err.count("\n") == 1
    assert err.startswith("error: ") and message in err, err


def test_config_file_errors_name_the_line(tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text("model: m\nout: o.json\nsuites: [heldout]\nlimit: 0\n")
    result = CliRunner().invoke(app, ["eval", "--config", str(config)])
    assert isinstance(result.exception, forgetbench.EvalError)
    assert str(result.exception) == f"{config}:4: field 'limit': must be >= 1, got 0"
    config.write_text("model: m\n")
    result = CliRunner().invoke(app, ["eval", "--config", str(config)])
    assert str(result.exception) == f"{config}: field 'out': required: it has no default"


def test_comma_lists_and_repeated_flags_mean_the_same(tmp_path):
    from mixsd_base import load_config

    as_comma = load_config(forgetbench.EvalConfig, None, {"model": "m", "out": "o.json",
                                                         "suites": ["heldout,refloss"]})  # fmt: skip
    as_set = load_config(forgetbench.EvalConfig, None, {"model": "m", "out": "o.json",
                                                       "suites": "heldout, refloss"})  # fmt: skip
    assert as_comma.suites == as_set.suites == ["heldout", "refloss"]


def test_cli_data_bad_input(tmp_path):
    result = CliRunner().invoke(app, ["data", "fetch", "gsm8kk", "--data-dir", str(tmp_path)])
    assert "unknown benchmark 'gsm8kk' (did you mean 'gsm8k'?)" in str(result.exception)
    result = CliRunner().invoke(app, ["data", "list", "--set", "data_dri=x"])
    assert "field 'data_dri': unknown key (did you mean 'data_dir'?)" in str(result.exception)


def test_cli_data_list(tmp_path):
    result = CliRunner().invoke(app, ["data", "list", "--data-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["humaneval"]["rows"] == 164 and rows["humaneval"]["available"]
    assert rows["gsm8k-100"]["rows"] == 100 and not rows["aime24"]["available"]


def test_loglikelihood_rows_are_one_on_cpu_and_the_batch_on_an_accelerator():
    """A 5-shot MMLU batch of 16 long rows needs ~24 GB of logits: one row at a time on CPU."""
    from types import SimpleNamespace

    import torch

    from forgetbench._heldout import loglikelihood_rows

    cpu = SimpleNamespace(device=torch.device("cpu"))
    cuda = SimpleNamespace(device=torch.device("cuda", 0))  # a device object needs no GPU
    assert loglikelihood_rows(cpu, 16) == 1
    assert loglikelihood_rows(cuda, 16) == 16


def test_heldout_item_scores_name_a_bad_sample_line(tmp_path):
    out = tmp_path / "m.json"
    out.write_text(json.dumps({"heldout": {"fb_humaneval": {"score": 0.5}},
                               "samples_file": "m.samples.jsonl"}))  # fmt: skip
    rows = [{"task": "kgfact/train", "id": "k0", "acc": 1.0},
            {"task": "fb_humaneval", "id": "HumanEval/0", "pass@1": 1.0},
            {"task": "fb_humaneval", "id": "HumanEval/1", "pass@1": 0.0}]  # fmt: skip
    sidecar = tmp_path / "m.samples.jsonl"
    sidecar.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert forgetbench.heldout_item_scores(out) == {
        "fb_humaneval": {"HumanEval/0": 1.0, "HumanEval/1": 0.0}
    }
    sidecar.write_text(sidecar.read_text() + json.dumps({"task": "fb_humaneval", "id": "x"}) + "\n")
    with pytest.raises(forgetbench.EvalError, match=r"m\.samples\.jsonl:4: field 'pass@1'"):
        forgetbench.heldout_item_scores(out)
    out.write_text(json.dumps({"indomain": {}, "samples_file": "m.samples.jsonl"}))
    assert forgetbench.heldout_item_scores(out) == {}  # no held-out task ran
