"""Stage ``fisher``: the base model's diagonal Fisher on prompts drawn at random from the
held-out benchmarks (``fisher_prompts``) with the base model's greedy responses, on the
``fisher:`` section's device and dtype, then the displacement and alignment of every checkpoint
of every trained method (the paper's Section 7 and Appendix E.1). The compare report holds
ΔNLL on that same set for every checkpoint; with ``evaluate_checkpoints: all`` the held-out and
reference-loss suites (``checkpoint_suites``) also run on every checkpoint that is not a method's
selected one (``fisher/evals/``), so the report's R4 pools every checkpoint's forgetting."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from mixsd._context import RunContext
from mixsd._methods import method_label
from mixsd._run_config import RunError
from mixsd._units import model_digest
from mixsd_base import UserError, file_sha256, write_jsonl

__all__ = ["CHECKPOINT_EVALS", "reference_size", "run"]

CHECKPOINT_EVALS = "evals"  # fisher/evals/: eval files of the checkpoints eval/ does not hold


def reference_size(ctx: RunContext) -> int:
    """Reference prompts: ``fisher.samples``, else the evaluation's limit, else 32."""
    section = ctx.config.fisher
    if section is not None and section.samples is not None:
        return int(section.samples)
    return ctx.config.eval.limit or 32


def fisher_prompts(ctx: RunContext, n: int) -> list[tuple[str, str]]:
    """``n`` (source, user turn) pairs of the Fisher data (Appendix E.1: examples drawn at random
    from the held-out benchmarks): in turn from each benchmark behind ``eval.tasks`` that has data
    here, rows drawn at random (the run's seed), zero-shot as the reference set words them
    (forgetbench's prompt builders: the responses must fit ``fisher.max_length``). With
    ``eval.ref_prompts_file``, or no held-out suite, the evaluation's reference prompts."""
    import random

    from forgetbench import (
        HELDOUT_TASKS,
        get_benchmark,
        load_benchmark,
        mmlu_split,
        reference_prompts,
        resolve_data_file,
    )

    options = ctx.config.eval
    names = list(dict.fromkeys(HELDOUT_TASKS[t].benchmark for t in options.tasks))
    names = [b for b in names if resolve_data_file(b, folder=options.data_dir) is not None]
    if options.ref_prompts_file is not None or "heldout" not in options.suites or not names:
        return [
            ("reference", p) for p in reference_prompts(n, prompts_file=options.ref_prompts_file)
        ]
    rng = random.Random(ctx.config.seed)
    pools = []
    for name in names:
        rows, kind = load_benchmark(name, folder=options.data_dir), get_benchmark(name).kind
        if kind == "mcq":
            rows = mmlu_split(rows)[1]  # without the rows the held-out eval uses as shots
        rows = rng.sample(rows, min(len(rows), -(-n // len(names))))
        pools.append([(name, _user_turn(kind, row)) for row in rows])
    out = []
    for i in range(n):  # the benchmarks in turn, as the reference prompts
        pool = pools[i % len(pools)]
        out.append(pool[(i // len(pools)) % len(pool)])
    return out


def _user_turn(kind: str, row: dict[str, Any]) -> str:
    """A benchmark row as the reference set words it (forgetbench's builders, no shots)."""
    from forgetbench import code_prompt, math_prompt, mmlu_prompt

    if kind == "math":
        return math_prompt(row["problem"])
    if kind == "code":
        return code_prompt(row["prompt"])
    return mmlu_prompt(row, [])


def run(ctx: RunContext, runs: dict[str, dict[str, Any]], evals: dict[str, Path]) -> Path | None:
    """The compare report (``fisher/compare.json``), or None when ``fisher: null``."""
    if ctx.config.fisher is None:
        return None
    folder = ctx.paths.fisher
    report = folder / "compare.json"
    # The last two decide the evaluations below, not the comparison.
    skip = ("samples", "evaluate_checkpoints", "checkpoint_suites")
    options = {k: v for k, v in asdict(ctx.config.fisher).items() if k not in skip}
    prompts = fisher_prompts(ctx, reference_size(ctx))
    checkpoints = sorted(
        str(p) for label in runs for p in ctx.paths.train(label).glob("checkpoint-*") if p.is_dir()
    )
    # An edit (MEMIT) leaves one model and no checkpoints: it is its own point.
    checkpoints += [s["checkpoint"] for s in runs.values() if s.get("rule") == "memit"]
    selected = {str(Path(s["checkpoint"]).resolve()) for s in runs.values()}
    if ctx.config.fisher.evaluate_checkpoints == "selected":
        # Only the points R4 pools: a checkpoint without an evaluation has no forgetting to
        # correlate, and comparing it costs a model load and a pass over the Fisher data.
        checkpoints = [c for c in checkpoints if str(Path(c).resolve()) in selected]
    inputs = {
        "options": options,
        "prompts": prompts,
        "model": ctx.base_digest,
        "base_eval": file_sha256(evals[method_label("base")]),
        "checkpoints": [(c, model_digest(c)) for c in checkpoints],
    }

    def build() -> None:
        _fisher(ctx, folder, report, prompts, checkpoints)

    ctx.units.run("fisher", "compare", inputs, [report], build)
    others = [c for c in checkpoints if str(Path(c).resolve()) not in selected]
    wanted = (
        _evaluate(ctx, others, evals) if ctx.config.fisher.evaluate_checkpoints == "all" else []
    )
    # The report reads every file there: one of another run's checkpoints (or of a checkpoint
    # now selected, evaluated in eval/) would be a stale point.
    keep = {out.name for out in wanted} | {f"{out.stem}.samples.jsonl" for out in wanted}
    for path in (folder / CHECKPOINT_EVALS).glob("*.json*"):
        if path.name not in keep:
            path.unlink()
    return report


def _evaluate(ctx: RunContext, checkpoints: list[str], evals: dict[str, Path]) -> list[Path]:
    """The eval section's held-out and reference-loss suites on each checkpoint, one unit each,
    into fisher/evals/ (the in-domain and edit suites are the selected checkpoints' business);
    returns the eval files."""
    from forgetbench import EvalConfig, evaluate
    from mixsd._sections import stage_config

    assert ctx.config.fisher is not None
    wanted = ctx.config.fisher.checkpoint_suites
    suites = [s for s in ctx.config.eval.suites if s in wanted]
    if not suites:
        return []
    folder = ctx.paths.fisher / CHECKPOINT_EVALS
    outs = []
    for checkpoint in checkpoints:
        path = Path(checkpoint)
        out = folder / f"{path.parent.name}--{path.name}.json"
        owned = {
            "model": checkpoint,
            "out": str(out),
            "base_model": ctx.base_model,
            "cache_dir": str(ctx.paths.cache),
            "seed": ctx.config.seed,
            "base": str(evals[method_label("base")]) if "heldout" in suites else None,
            "suites": suites,
        }
        try:
            config = stage_config(EvalConfig, ctx.config.eval, **owned)
        except (UserError, ValueError) as exc:
            raise ctx.config.section_error(("eval",), exc) from None
        inputs = {**asdict(config), "model": model_digest(checkpoint), "out": out.name}
        inputs.pop("base")
        inputs.pop("cache_dir")

        def build(c: Any = config) -> None:
            evaluate(c)

        ctx.units.run("fisher", f"eval-{out.stem}", inputs, [out], build)
        outs.append(out)
    return outs


def _fisher(
    ctx: RunContext,
    folder: Path,
    report: Path,
    prompts: list[tuple[str, str]],
    checkpoints: list[str],
) -> None:
    from fishertools import (
        CompareConfig,
        FisherConfig,
        compare_checkpoints,
        compute_fisher,
        save_fisher,
    )
    from mixsd._sections import stage_config
    from mixsd_core import load_model

    # The section's device and dtype (configs/paper: cuda, bfloat16): gradients in that dtype,
    # cast to fp32 before squaring (fishertools' memory plan: 8 bytes/parameter in bf16).
    options = ctx.config.fisher
    assert options is not None  # run() stops first for fisher: null
    model, tokenizer = load_model(ctx.base_model, dtype=options.dtype, device=options.device)
    reference = folder / "reference.jsonl"
    records = _reference_records(ctx, model, tokenizer, prompts)
    write_jsonl(reference, records)
    # The reference file holds the drawn records already: Fisher uses all of it.
    fisher_config = stage_config(FisherConfig, options, samples=None)
    result = compute_fisher(
        model, reference, fisher_config, tokenizer=tokenizer, progress=ctx.progress
    )
    save_fisher(result, folder / "base.safetensors")
    model.zero_grad(set_to_none=True)
    compare_config = stage_config(
        CompareConfig, options, loss_data=reference, loss_samples=len(records), plot=True
    )
    compare_checkpoints(
        result,
        model,
        checkpoints,
        compare_config,
        out=report,
        tokenizer=tokenizer,
        progress=ctx.progress,
    )


def _reference_records(
    ctx: RunContext, model: Any, tokenizer: Any, prompts: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """The Fisher data: ``prompts`` + the base model's greedy responses (forgetbench's cached
    reference set). The Fisher is estimated on it and ΔNLL is the NLL increase on it.

    A prompt that fills ``fisher.max_length`` by itself leaves no response token to take a
    gradient on (some MMLU questions run past 512 tokens): it is left out, before decoding."""
    from forgetbench import reference_set
    from mixsd_core import render_user_prompt

    section = ctx.config.fisher
    assert section is not None
    prompts = [
        (source, prompt)
        for source, prompt in prompts
        if len(
            tokenizer(render_user_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]
        )
        < section.max_length
    ]
    if not prompts:
        raise RunError(
            f"every Fisher prompt fills fisher.max_length={section.max_length} by itself: "
            "raise fisher.max_length"
        )
    options = ctx.config.eval
    ref = reference_set(
        ctx.base_model,
        [p for _, p in prompts],
        max_new_tokens=options.ref_max_new_tokens,
        batch_size=options.batch_size,
        cache_dir=str(ctx.paths.cache),
        load=lambda spec: (model, tokenizer),
        base=(model, tokenizer),
    )
    records = []
    for i, ((source, prompt), ids) in enumerate(zip(prompts, ref["responses"], strict=True)):
        response = tokenizer.decode(ids, skip_special_tokens=True)
        if response.strip():  # an empty reply has no tokens to take a gradient on
            records.append(
                {"id": f"ref-{i:04d}", "source": source, "prompt": prompt, "response": response}
            )
    if not records:
        raise RunError("the base model gave only empty reference responses: no Fisher data")
    return records
