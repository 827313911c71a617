"""The fisher stage runs on its section's device and dtype, and evaluates every checkpoint it
compares that is not a method's selected one (so the report's R4 pools them all)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml


def _context(
    tmp_path: Path, model: Path, fisher: dict[str, Any], suites: list[str], **eval_options: Any
) -> Any:
    from mixsd._context import RunContext
    from mixsd._run_config import load_run_config
    from mixsd._units import UnitRunner
    from mixsd_base import write_text

    config = {
        "out": str(tmp_path / "run"),
        "model": str(model),
        "methods": ["base", "sft"],
        "eval": {"suites": suites, "limit": 2, **eval_options},
        "fisher": fisher,
    }
    path = tmp_path / "run.yaml"
    write_text(path, yaml.safe_dump(config))
    loaded = load_run_config(path)
    paths = loaded.paths
    units = UnitRunner(paths.root, echo=lambda _: None)
    return RunContext(loaded, paths, units, str(model), "digest", progress=False)


def _base_eval(ctx: Any) -> dict[str, Path]:
    path = ctx.paths.eval("base")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"model": ctx.base_model}))
    return {"base": path}


def test_fisher_stage_loads_the_base_on_the_section_device_and_dtype(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mixsd_core
    from mixsd._stages import fisher

    asked: dict[str, Any] = {}

    class Loaded(Exception):
        pass

    def load_model(spec: str, **kwargs: Any) -> Any:
        asked.update(kwargs, spec=spec)
        raise Loaded

    monkeypatch.setattr(mixsd_core, "load_model", load_model)
    ctx = _context(tmp_path, tiny_model_dir, {"dtype": "bfloat16", "device": "cuda"}, ["refloss"])
    with pytest.raises(Loaded):
        fisher.run(ctx, {}, _base_eval(ctx))
    assert asked == {"spec": str(tiny_model_dir), "dtype": "bfloat16", "device": "cuda"}


@pytest.mark.parametrize("which", ["all", "selected"])
def test_fisher_stage_evaluates_every_checkpoint_not_selected(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    import forgetbench
    from mixsd._stages import fisher
    from mixsd_base import write_text

    ctx = _context(
        tmp_path,
        tiny_model_dir,
        {"evaluate_checkpoints": which},
        ["indomain", "refloss", "heldout"],
    )
    runs = {}
    for label in ("sft", "mixsd-a0.5"):
        for step in (1, 2):  # model_digest reads a checkpoint's weight files
            (ctx.paths.train(label) / f"checkpoint-{step}").mkdir(parents=True)
        runs[label] = {"checkpoint": str(ctx.paths.train(label) / "checkpoint-2")}  # selected
    compared: list[str] = []

    def compare(ctx: Any, folder: Path, report: Path, n: Any, cps: list[str]) -> None:
        compared.extend(cps)
        write_text(report, "{}")

    monkeypatch.setattr(fisher, "_fisher", compare)
    evaluated: list[Any] = []

    def evaluate(config: Any) -> None:
        evaluated.append(config)
        write_text(config.out, "{}")
        write_text(Path(config.out).with_suffix(".samples.jsonl"), "")

    monkeypatch.setattr(forgetbench, "evaluate", evaluate)
    folder = ctx.paths.fisher / fisher.CHECKPOINT_EVALS
    # A previous run's files: a checkpoint now selected (evaluated in eval/), one now gone.
    stale = [folder / "sft--checkpoint-2.json", folder / "old--checkpoint-9.samples.jsonl"]
    for path in stale:
        write_text(path, "{}")
    evals = _base_eval(ctx)
    fisher.run(ctx, runs, evals)
    assert not any(path.exists() for path in stale)
    steps = (2,) if which == "selected" else (1, 2)  # 'selected': only the points R4 pools
    assert compared == [
        str(ctx.paths.train(label) / f"checkpoint-{step}")
        for label in ("mixsd-a0.5", "sft")
        for step in steps
    ]
    if which == "selected":
        assert evaluated == [] and not list(folder.iterdir())
        return
    assert [c.model for c in evaluated] == [
        str(ctx.paths.train(label) / "checkpoint-1") for label in ("mixsd-a0.5", "sft")
    ]
    config = evaluated[1]
    assert config.suites == ["refloss", "heldout"]  # in-domain: the selected checkpoints' only
    assert config.base == str(evals["base"])
    assert Path(config.out) == folder / "sft--checkpoint-1.json"
    assert sorted(p.name for p in folder.iterdir()) == [
        "mixsd-a0.5--checkpoint-1.json",
        "mixsd-a0.5--checkpoint-1.samples.jsonl",
        "sft--checkpoint-1.json",
        "sft--checkpoint-1.samples.jsonl",
    ]


def test_fisher_data_is_drawn_from_the_heldout_benchmarks(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Appendix E.1: random examples of the held-out benchmarks, in turn, seeded by the run; a
    task without data here (AIME-2024 in an empty data folder) is left out."""
    from forgetbench import load_benchmark, math_prompt, reference_prompts
    from mixsd._stages.fisher import fisher_prompts

    monkeypatch.setenv("FORGETBENCH_DATA", str(tmp_path / "no-data"))
    tasks = ["fb_aime24", "fb_gsm8k100", "fb_humaneval", "fb_mmlu"]
    ctx = _context(tmp_path, tiny_model_dir, {}, ["heldout"], tasks=tasks)
    drawn = fisher_prompts(ctx, 7)
    sources = [source for source, _ in drawn]
    assert sources == ["gsm8k-100", "humaneval", "mmlu"] * 2 + ["gsm8k-100"]
    gsm8k = {math_prompt(r["problem"]) for r in load_benchmark("gsm8k-100")}
    assert all(p in gsm8k for s, p in drawn if s == "gsm8k-100")
    assert len({p for _, p in drawn}) == 7 and fisher_prompts(ctx, 7) == drawn
    ctx.config.seed = 1
    assert fisher_prompts(ctx, 7) != drawn  # drawn at random, not the first rows
    # no held-out suite: the evaluation's reference prompts, as before
    plain = _context(tmp_path / "plain", tiny_model_dir, {}, ["refloss"], tasks=tasks)
    assert fisher_prompts(plain, 4) == [("reference", p) for p in reference_prompts(4)]


def test_prompts_that_fill_max_length_are_left_out_of_the_fisher_data(
    tmp_path: Path, tiny_lm: Any, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prompt longer than fisher.max_length leaves no response token (the quickstart's MMLU
    draw hit one at 512): it is dropped before decoding instead of failing the stage."""
    import forgetbench
    from mixsd._stages import fisher

    model, tokenizer = tiny_lm
    decoded: list[str] = []

    def reference_set(spec: str, prompts: list[str], **kwargs: Any) -> dict[str, Any]:
        decoded.extend(prompts)
        return {"responses": [tokenizer.encode("B", add_special_tokens=False) for _ in prompts]}

    monkeypatch.setattr(forgetbench, "reference_set", reference_set)
    ctx = _context(tmp_path, tiny_model_dir, {"max_length": 48}, ["refloss"])
    prompts = [("mmlu", "short question?"), ("mmlu", "long " * 200), ("gsm8k", "2 + 2?")]
    records = fisher._reference_records(ctx, model, tokenizer, prompts)
    assert decoded == ["short question?", "2 + 2?"]
    assert [r["source"] for r in records] == ["mmlu", "gsm8k"]
    with pytest.raises(Exception, match=r"fisher\.max_length=48"):
        fisher._reference_records(ctx, model, tokenizer, [("mmlu", "long " * 200)])


def test_checkpoint_suites_picks_what_each_checkpoint_is_evaluated_on(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[refloss]: ΔL_ref alone on every checkpoint not selected (R4's cheap measure on CPU)."""
    import forgetbench
    from mixsd._stages import fisher
    from mixsd_base import write_text

    fisher_section = {"evaluate_checkpoints": "all", "checkpoint_suites": ["refloss"]}
    ctx = _context(tmp_path, tiny_model_dir, fisher_section, ["indomain", "refloss", "heldout"])
    (ctx.paths.train("sft") / "checkpoint-1").mkdir(parents=True)
    (ctx.paths.train("sft") / "checkpoint-2").mkdir(parents=True)
    runs = {"sft": {"checkpoint": str(ctx.paths.train("sft") / "checkpoint-2")}}
    monkeypatch.setattr(fisher, "_fisher", lambda c, f, report, n, cps: write_text(report, "{}"))
    suites: list[list[str]] = []

    def evaluate(config: Any) -> None:
        suites.append(config.suites)
        write_text(config.out, "{}")

    monkeypatch.setattr(forgetbench, "evaluate", evaluate)
    fisher.run(ctx, runs, _base_eval(ctx))
    assert suites == [["refloss"]]


def test_checkpoint_suites_outside_heldout_and_refloss_is_a_config_error(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    from mixsd._run_config import RunError

    with pytest.raises(RunError, match=r"run.yaml:\d+: field 'fisher.checkpoint_suites'.*indomain"):
        _context(tmp_path, tiny_model_dir, {"checkpoint_suites": ["indomain"]}, ["refloss"])
