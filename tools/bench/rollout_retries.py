"""Benchmark: pooled retries (``chunk_batches`` > 1) vs each batch retrying its failures alone.

    uv run python tools/bench/rollout_retries.py                 # default model, 32 facts
    uv run python tools/bench/rollout_retries.py --tiny          # tiny random model, toy verifier
    uv run python tools/bench/rollout_retries.py --records 64 --alpha 0.3 --threads 1

The same ``run_rollout`` (greedy, verified, ``--max-retries`` redraws) on the first ``--records``
KGFact-Small train facts (``kgworld`` preset small, seed 0, generated in a temporary folder),
twice: (a) ``chunk_batches`` = ``--chunk-batches`` (the default 8: a chunk's failed rows are
redrawn together, in full batches), (b) ``chunk_batches`` = 1 (each batch of ``--batch-size``
redraws its own failures, in ever smaller batches). Model loading is not timed; the two runs
alternate ``--repeats`` times and the best time of each is kept. Prints both wall times, the
batches each decoded, whether the two kept the same targets, and the speed-up b / a.

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
        model, tokenizer = load_model(spec, dtype="fp32", device="cpu")
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

        rollout_module.mixed_rollout = counting
        results: dict[int, dict[str, Any]] = {}
        for _ in range(args.repeats):
            for chunk_batches in (args.chunk_batches, 1):
                out = root / f"out-{chunk_batches}.jsonl"
                config = RolloutConfig(
                    data=str(data),
                    out=str(out),
                    alpha=args.alpha,
                    batch_size=args.batch_size,
                    chunk_batches=chunk_batches,
                    max_new_tokens=args.new_tokens,
                    max_retries=args.max_retries,
                    overwrite=True,
                )
                out.unlink(missing_ok=True)
                batches.clear()
                start = time.perf_counter()
                manifest = run_rollout(
                    config, model=model, tokenizer=tokenizer, verifier=verifier, progress=False
                )
                seconds = time.perf_counter() - start
                best = results.get(chunk_batches, {}).get("seconds", float("inf"))
                results[chunk_batches] = {
                    "seconds": min(seconds, best),
                    "batches": list(batches),
                    "counts": manifest["counts"],
                    "targets": out.read_text(),
                }
        rollout_module.mixed_rollout = real

    pooled, alone = results[args.chunk_batches], results[1]
    print(
        f"model {spec}, torch threads {torch.get_num_threads()}, {args.records} records, "
        f"batch {args.batch_size}, alpha {args.alpha}, max_retries {args.max_retries}, "
        f"{args.new_tokens} new tokens"
    )
    for name, r in (
        (f"(a) pooled, chunk_batches {args.chunk_batches}", pooled),
        ("(b) batch by batch, chunk_batches 1", alone),
    ):
        sizes = r["batches"]
        print(
            f"{name:38s} {r['seconds']:8.2f} s  {len(sizes):4d} batches, "
            f"{sum(sizes)} row decodes, mean batch {sum(sizes) / len(sizes):.1f}; "
            f"kept {r['counts']['kept']}/{r['counts']['examples']}"
        )
    same = pooled["targets"] == alone["targets"]
    print(f"same kept targets: {'yes' if same else 'no (batch padding changed a near-tie)'}")
    print(f"speed-up b / a = {alone['seconds'] / pooled['seconds']:.2f}x")


if __name__ == "__main__":
    main()
