"""Benchmark: mixsd_train's NLL trainer vs a plain ``transformers.Trainer``, and MixSD vs OPSD.

    uv run python tools/bench/train.py                       # tiny model, built on the fly
    uv run python tools/bench/train.py --model default       # SmolLM2-135M-Instruct, fp32, CPU
    uv run python tools/bench/train.py --model default --data world/kgfact/train.jsonl

Training data: the first records of KGFact-Small (``kgworld`` preset small, seed 0, generated in
a temporary folder in about a second), or of ``--data``. Everything runs in fp32 on the CPU.

(a) Trainer throughput. ``mixsd_train``'s NLL trainer, built exactly as ``mixsd train --method
    sft`` builds it (``mixsd_train.train(..., run=False)``: its dataset, collator and loss), and a
    plain ``transformers.Trainer`` on the same dataset and collator (labels -100 on prompt tokens,
    the causal-LM model computes its own loss), same arguments and seed, so the same batches
    (checked). Each run starts from freshly loaded weights; the two alternate ``--repeats`` times.
    Tokens/s counts the real (non-pad) tokens of the steps after the first ``--warmup-steps``,
    timed from optimizer step to optimizer step. Prints the median tokens/s of each and
    A = NLL / plain (target >= 0.9).

(b) Whole-method cost to the same number of optimizer steps, on the same ``--records`` prompts
    and global batch: MixSD = mixed rollouts (``run_rollout``, ``--alpha`` (0.5), greedy,
    verified, with ``--max-retries`` redraws, batches of ``--rollout-batch``) + NLL training on
    the verified targets; OPSD = the OPSD trainer, which samples ``--generations`` rollouts per
    prompt at every step (temperature 1.0) and trains on top-k KL to the expert-prompted base.
    Steps default to OPSD's own schedule, two epochs over the prompts. Both use ``--new-tokens``
    as the longest rollout. Model loading and saving are not timed. If no target passes the
    verifier (a random model), MixSD's NLL part trains on the canonical targets instead (same
    cost per token). Prints both wall times and B = MixSD / OPSD (target <= 0.25).
    ``--opsd-steps K`` times only OPSD's first K steps and scales that to the schedule (an OPSD
    step samples, scores and trains the same way every time, so its cost is linear in steps;
    MixSD is always run in full): for schedules too long to run both on a CPU. The output says
    "projected" when it does.

On a busy 2-core machine use ``--threads 1``: two torch threads that keep getting descheduled
made a training step about 6x slower. Results: packages/mixsd-train/README.md, "Benchmarks".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import Trainer, TrainerCallback, TrainingArguments

from mixsd_core import RolloutConfig, load_model, run_rollout
from mixsd_train import MixSDConfig, OPSDConfig, SFTConfig, load_config, train


class CountingCollator:
    """Wraps a collator; records each batch's real-token count and a hash of its ids."""

    def __init__(self, collate: Any) -> None:
        self.collate = collate
        self.batches: list[tuple[int, str]] = []

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collate(examples)
        digest = hashlib.sha1(batch["input_ids"].numpy().tobytes()).hexdigest()
        self.batches.append((int(batch["attention_mask"].sum()), digest))
        return batch


class StepClock(TrainerCallback):
    """The time at the end of every optimizer step."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.ends.append(time.perf_counter())


def kgfact_lines(n: int, data: str | None, folder: Path) -> list[str]:
    """The first ``n`` JSONL lines of ``data``, or of a freshly generated KGFact-Small."""
    if data is None:
        import kgworld

        world = kgworld.generate(kgworld.resolve_config(overrides={"preset": "small", "seed": 0}))
        data = str(world.write(folder / "world") / "kgfact" / "train.jsonl")
    with open(data, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()][:n]
    if len(lines) < n:
        raise SystemExit(f"{data}: only {len(lines)} records, need {n}")
    return lines


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(lines), encoding="utf-8")
    return path


def timed_train(trainer: Trainer, warmup: int) -> dict[str, Any]:
    """Train with a counting collator and a step clock; tokens/s after ``warmup`` steps."""
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    clock = StepClock()
    trainer.add_callback(clock)
    trainer.train()
    accumulation = trainer.args.gradient_accumulation_steps
    steps = len(clock.ends)
    # Batches are consumed in order, `accumulation` per step (a prefetched extra one is ignored).
    used = counter.batches[: steps * accumulation]
    tokens = sum(n for n, _ in used[warmup * accumulation :])
    seconds = clock.ends[-1] - clock.ends[warmup - 1]
    return {"tokens_per_s": tokens / seconds, "tokens": tokens, "seconds": seconds, "batches": used}


def bench_throughput(
    args: argparse.Namespace, spec: str, records: Path, tmp: Path
) -> dict[str, Any]:
    common: dict[str, Any] = {
        "max_steps": args.steps,
        "per_device_train_batch_size": args.micro_batch,
        "gradient_accumulation_steps": args.batch_size // args.micro_batch,
        "learning_rate": 5e-5,
        "warmup_steps": 0,
        "lr_scheduler_type": "constant_with_warmup",
        "weight_decay": 0.01,
        "adam_beta2": 0.95,
        "logging_steps": args.steps,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": True,
        "seed": 0,
        "dataloader_pin_memory": False,
    }
    runs: dict[str, list[dict[str, Any]]] = {"nll": [], "plain": []}
    shared: dict[str, Any] = {}  # the NLL trainer's dataset and collator, for the plain Trainer
    for repeat in range(args.repeats):
        for name in runs:
            model, tokenizer = load_model(spec, dtype="float32", device="cpu")
            out = str(tmp / f"a-{name}-{repeat}")
            if name == "nll":
                # global_batch_size None: the accumulation steps of `common` stand. An override of
                # None means "not given", so it goes in the base layer.
                config = load_config(
                    SFTConfig,
                    None,
                    {**common, "output_dir": out, "model": spec, "data": str(records),
                     "eval_limit": 0, "max_length": 256},
                    base={"global_batch_size": None},
                )  # fmt: skip
                trainer = train("sft", config, model=model, tokenizer=tokenizer, run=False)
                shared = {"train_dataset": trainer.train_dataset, "collate": trainer.data_collator}
            else:
                # The very dataset and collator the NLL trainer got; the model computes the loss.
                trainer = Trainer(
                    model=model,
                    args=TrainingArguments(output_dir=out, remove_unused_columns=False, **common),
                    train_dataset=shared["train_dataset"],
                    data_collator=shared["collate"],
                    processing_class=tokenizer,
                )
            result = timed_train(trainer, args.warmup_steps)
            runs[name].append(result)
            del model, trainer  # weights, gradients and AdamW state: free before the next run
            print(
                f"  (a) {name:5s} run {repeat}: {result['tokens']} tokens in "
                f"{result['seconds']:.2f} s = {result['tokens_per_s']:.1f} tok/s",
                flush=True,
            )
    same = all(
        n["batches"] == p["batches"] for n, p in zip(runs["nll"], runs["plain"], strict=True)
    )
    assert same, "the two trainers saw different batches"
    nll = statistics.median(r["tokens_per_s"] for r in runs["nll"])
    plain = statistics.median(r["tokens_per_s"] for r in runs["plain"])
    ratio = nll / plain
    print(f"(a) NLL trainer    median {nll:9.1f} tok/s")
    print(f"(a) plain Trainer  median {plain:9.1f} tok/s  (same batches: {same})")
    print(f"A = NLL / plain = {ratio:.3f} (target >= 0.9: {'PASS' if ratio >= 0.9 else 'FAIL'})")
    return {
        "nll_tokens_per_s": [r["tokens_per_s"] for r in runs["nll"]],
        "plain_tokens_per_s": [r["tokens_per_s"] for r in runs["plain"]],
        "ratio": ratio,
    }


def bench_methods(args: argparse.Namespace, spec: str, records: Path, tmp: Path) -> dict[str, Any]:
    steps = args.method_steps or max(1, 2 * args.records // args.batch_size)
    common: dict[str, Any] = {
        "model": spec,
        "max_steps": steps,
        "global_batch_size": args.batch_size,
        "per_device_train_batch_size": args.micro_batch,
        "learning_rate": 5e-5,
        "warmup_steps": 0,
        "logging_steps": steps,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": True,
        "eval_limit": 0,
        "max_length": 256,
    }
    print(
        f"(b) {args.records} prompts, global batch {args.batch_size}, {steps} optimizer steps "
        f"({steps * args.batch_size / args.records:g} epochs), rollouts up to {args.new_tokens} tokens"
    )

    # MixSD: mixed rollouts of the base model, then NLL on the verified targets.
    model, tokenizer = load_model(spec, dtype="float32", device="cpu")
    rollout = RolloutConfig(
        model=spec,
        data=str(records),
        out=str(tmp / "mix.jsonl"),
        alpha=args.alpha,
        batch_size=args.rollout_batch,
        max_new_tokens=args.new_tokens,
        max_retries=args.max_retries,
        device="cpu",
        dtype="float32",
    )
    start = time.perf_counter()
    manifest = run_rollout(rollout, model=model, tokenizer=tokenizer, progress=False)
    rollout_s = time.perf_counter() - start
    counts = manifest["counts"]
    print(
        f"  MixSD rollouts: {rollout_s:.1f} s, kept {counts['kept']}/{counts['examples']}, "
        f"{counts['tokens']} target tokens, attempts of kept {manifest['attempts_histogram']}",
        flush=True,
    )
    if counts["kept"]:
        method, config_cls, data = "mixsd", MixSDConfig, rollout.out
    else:
        # Nothing verified (a random model): train on the canonical targets instead, which costs
        # the same per token; the rollout time above still counts every attempt.
        print("  no verified target: MixSD's NLL part trains on the canonical targets")
        method, config_cls, data = "sft", SFTConfig, str(records)
    config = load_config(
        config_cls, None, {**common, "data": data, "output_dir": str(tmp / "b-mixsd")}
    )
    start = time.perf_counter()  # building the trainer counts, as for OPSD below
    trainer = train(method, config, model=model, tokenizer=tokenizer, run=False)
    trainer.train()
    mixsd_train_s = time.perf_counter() - start
    mixsd_s = rollout_s + mixsd_train_s
    print(f"  MixSD NLL training: {mixsd_train_s:.1f} s", flush=True)
    del model, trainer

    # OPSD: the student samples n rollouts per prompt at every step, top-k KL to the teacher.
    opsd_steps = min(args.opsd_steps or steps, steps)
    model, tokenizer = load_model(spec, dtype="float32", device="cpu")
    config = load_config(
        OPSDConfig,
        None,
        {**common, "data": str(records), "output_dir": str(tmp / "b-opsd"),
         "num_generations": args.generations, "max_new_tokens": args.new_tokens,
         "max_steps": opsd_steps, "logging_steps": opsd_steps},
    )  # fmt: skip
    start = time.perf_counter()  # includes the teacher copy: part of the method, paid once
    trainer = train("opsd", config, model=model, tokenizer=tokenizer, run=False)
    setup_s = time.perf_counter() - start
    trainer.train()
    measured_s = time.perf_counter() - start
    opsd_s = setup_s + (measured_s - setup_s) * steps / opsd_steps
    ratio = mixsd_s / opsd_s
    print(
        f"(b) MixSD  {mixsd_s:8.1f} s  (rollouts {rollout_s:.1f} s + training {mixsd_train_s:.1f} s)"
    )
    how = (
        f"{steps} steps"
        if opsd_steps == steps
        else f"projected: setup {setup_s:.1f} s + {opsd_steps} steps in "
        f"{measured_s - setup_s:.1f} s x {steps}/{opsd_steps}"
    )
    print(f"(b) OPSD   {opsd_s:8.1f} s  (n = {args.generations}; {how})")
    print(f"B = MixSD / OPSD = {ratio:.3f} (target <= 0.25: {'PASS' if ratio <= 0.25 else 'FAIL'})")
    return {
        "steps": steps,
        "rollout_s": rollout_s,
        "rollout_counts": counts,
        "mixsd_train_s": mixsd_train_s,
        "mixsd_s": mixsd_s,
        "opsd_s": opsd_s,
        "opsd_steps_timed": opsd_steps,
        "ratio": ratio,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default=None, help="load_model spec, e.g. 'default' (default: the tiny model)."
    )
    parser.add_argument(
        "--data", default=None, help="KGFact records JSONL (default: KGFact-Small)."
    )
    parser.add_argument("--batch-size", type=int, default=4, help="Examples per optimizer step.")
    parser.add_argument("--micro-batch", type=int, default=4, help="Examples per forward pass.")
    parser.add_argument("--steps", type=int, default=8, help="(a) optimizer steps per run.")
    parser.add_argument("--warmup-steps", type=int, default=2, help="(a) untimed first steps.")
    parser.add_argument("--repeats", type=int, default=3, help="(a) runs of each trainer.")
    parser.add_argument("--records", type=int, default=8, help="(b) training prompts.")
    parser.add_argument(
        "--method-steps", type=int, default=None, help="(b) steps (default: 2 epochs)."
    )
    parser.add_argument("--new-tokens", type=int, default=64, help="(b) longest rollout.")
    parser.add_argument(
        "--max-retries",
        type=int,
        default=RolloutConfig.max_retries,
        help="(b) MixSD rollout redraws (default: mixsd rollout's).",
    )
    parser.add_argument("--generations", type=int, default=8, help="(b) OPSD samples per prompt.")
    parser.add_argument("--alpha", type=float, default=0.5, help="(b) MixSD mixing alpha.")
    parser.add_argument("--rollout-batch", type=int, default=8, help="(b) MixSD rollout batch.")
    parser.add_argument(
        "--opsd-steps",
        type=int,
        default=None,
        help="(b) time K OPSD steps and scale (default: all).",
    )
    parser.add_argument("--skip", choices=("a", "b"), default=None, help="Leave out one part.")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)."
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the numbers here.")
    args = parser.parse_args()
    if (
        args.batch_size % args.micro_batch
        or args.warmup_steps < 1
        or args.steps <= args.warmup_steps
    ):
        parser.error("need batch-size % micro-batch == 0 and 1 <= warmup-steps < steps")
    if args.threads:
        torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()  # weight-loading bars, one per run

    with tempfile.TemporaryDirectory(prefix="mixsd-bench-train-") as name:
        tmp = Path(name)
        spec = args.model
        if spec is None:
            from mixsd_core.testing import build_tiny_model

            spec = str(build_tiny_model(tmp / "tiny"))
        lines = kgfact_lines(max(args.records, args.steps * args.batch_size), args.data, tmp)
        print(
            f"model {args.model or 'tiny'}, torch threads {torch.get_num_threads()}, global batch "
            f"{args.batch_size} (micro-batch {args.micro_batch}), fp32 CPU",
            flush=True,
        )
        results: dict[str, Any] = {
            "model": args.model or "tiny",
            "args": vars(args) | {"json": None},
        }
        if args.skip != "a":
            # (a) one epoch at most, so no example repeats within a run.
            records = write_lines(tmp / "records-a.jsonl", lines)
            results["throughput"] = bench_throughput(args, spec, records, tmp)
        if args.skip != "b":
            records = write_lines(tmp / "records-b.jsonl", lines[: args.records])
            results["methods"] = bench_methods(args, spec, records, tmp)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
