"""Benchmark: how a rollout's redraws are batched: ahead, pooled, or batch by batch.

    uv run python tools/bench/rollout_retries.py                 # default model, 32 facts
    uv run python tools/bench/rollout_retries.py --tiny          # tiny random model, toy verifier
    uv run python tools/bench/rollout_retries.py --records 64 --alpha 0.3 --threads 1
    uv run python tools/bench/rollout_retries.py --model qwen2.5-coder-0.5b-instruct \
        --records 16 --batch-size 16 --new-tokens 256 --max-retries 15 --prompt-style paper \
        --verifier boxed --dtype bf16                             # configs/cpu-claims.yaml's

The same ``run_rollout`` (greedy, verified, ``--max-retries`` redraws) on the first ``--records``
KGFact-Small train facts (``kgworld`` preset small, seed 0, generated in a temporary folder),
three ways:

(a) the default: a chunk's failed rows are redrawn together (``chunk_batches`` =
    ``--chunk-batches``), and a round's spare batch rows decode the pending facts' next redraws
    ahead (``parallel_redraws``);
(b) pooled, one redraw per fact and round (``parallel_redraws`` off);
(c) each batch of ``--batch-size`` redraws its own failures, one per round (``chunk_batches`` 1).

Model loading is not timed; the runs alternate ``--repeats`` times and the best time of each is
kept. Prints each wall time, the batches it decoded (rows summed: the decodes ahead that a kept
redraw made useless count too), whether all three kept the same targets, and each one's time
over (a)'s.

With ``--tiny`` the random model never states an answer, so a toy verifier passes about one
reply in three (by the reply's SHA-256), to give the retries something to do.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import kgworld
import mixsd_core._rollout as rollout_module
from mixsd_core import RolloutConfig, load_model, run_rollout


def toy_verifier(reply: str, answer: str) -> bool:
    """Passes about one reply in three, by the reply's SHA-256 (the tiny model never answers)."""
    return hashlib.sha256(reply.encode()).digest()[0] % 3 == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="load_model spec (default: default)")
    parser.add_argument("--tiny", action="store_true", help="build and use the tiny test model")
    parser.add_argument("--records", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--chunk-batches", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--max-retries", type=int, default=10)
    parser.add_argument("--new-tokens", type=int, default=40)
    parser.add_argument("--prompt-style", default="clear", help="the expert wording")
    parser.add_argument("--verifier", default="auto", help="a rollout verifier name")
    parser.add_argument("--dtype", default="fp32", help="the model's dtype (fp32, bf16)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="mixsd-bench-") as tmp:
        root = Path(tmp)
        spec = args.model
        if args.tiny:
            from mixsd_core.testing import build_tiny_model

            spec = str(build_tiny_model(root / "tiny"))
        model, tokenizer = load_model(spec, dtype=args.dtype, device="cpu")
        world = kgworld.generate(kgworld.resolve_config(overrides={"preset": "small", "seed": 0}))
        world.write(root / "world")
        data = root / "train.jsonl"
        lines = (root / "world" / "kgfact" / "train.jsonl").read_text().splitlines()
        data.write_text("".join(line + "\n" for line in lines[: args.records]))
        verifier = toy_verifier if args.tiny else None

        batches: list[int] = []
        real = rollout_module.mixed_rollout

        def counting(*a: Any, **k: Any) -> Any:
            batches.append(len(a[2]))
            return real(*a, **k)

        variants = {
            f"(a) ahead, chunk_batches {args.chunk_batches}": dict(
                chunk_batches=args.chunk_batches, parallel_redraws=True
            ),
            f"(b) pooled, chunk_batches {args.chunk_batches}": dict(
                chunk_batches=args.chunk_batches, parallel_redraws=False
            ),
            "(c) batch by batch, chunk_batches 1": dict(chunk_batches=1, parallel_redraws=False),
        }
        rollout_module.mixed_rollout = counting
        results: dict[str, dict[str, Any]] = {}
        for _ in range(args.repeats):
            for name, overrides in variants.items():
                out = root / "out.jsonl"
                config = RolloutConfig(
                    data=str(data),
                    out=str(out),
                    alpha=args.alpha,
                    batch_size=args.batch_size,
                    max_new_tokens=args.new_tokens,
                    max_retries=args.max_retries,
                    prompt_style=args.prompt_style,
                    verifier=args.verifier,
                    dtype=args.dtype,
                    overwrite=True,
                    **overrides,
                )
                out.unlink(missing_ok=True)
                batches.clear()
                start = time.perf_counter()
                manifest = run_rollout(
                    config, model=model, tokenizer=tokenizer, verifier=verifier, progress=False
                )
                seconds = time.perf_counter() - start
                best = results.get(name, {}).get("seconds", float("inf"))
                results[name] = {
                    "seconds": min(seconds, best),
                    "batches": list(batches),
                    "counts": manifest["counts"],
                    "targets": out.read_text(),
                }
        rollout_module.mixed_rollout = real

    print(
        f"model {spec} ({args.dtype}), torch threads {torch.get_num_threads()}, "
        f"{args.records} records, batch {args.batch_size}, alpha {args.alpha}, "
        f"max_retries {args.max_retries}, {args.new_tokens} new tokens"
    )
    first = next(iter(results.values()))
    for name, r in results.items():
        sizes = r["batches"]
        print(
            f"{name:38s} {r['seconds']:8.2f} s  {len(sizes):4d} batches, "
            f"{sum(sizes)} row decodes, mean batch {sum(sizes) / len(sizes):.1f}; "
            f"kept {r['counts']['kept']}/{r['counts']['examples']}; "
            f"{r['seconds'] / first['seconds']:.2f}x (a)'s time"
        )
    same = all(r["targets"] == first["targets"] for r in results.values())
    print(f"same kept targets: {'yes' if same else 'no (batch padding changed a near-tie)'}")


if __name__ == "__main__":
    main()
