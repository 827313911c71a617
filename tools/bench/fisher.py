"""Benchmark: vectorised (vmap) vs loop per-sample Fisher on the same samples.

    uv run python tools/bench/fisher.py                                   # tiny model, built on the fly
    uv run python tools/bench/fisher.py --model ~/.cache/mixsd/models/default --samples 8

Both estimators see the same encoded samples; after one warm-up sample each, they run
alternately ``--repeats`` times (the machine is shared, so the best time of each is reported).
``--attn`` is the attention the model runs with (fishertools loads models with eager; a model
loaded elsewhere has SDPA): the loop uses it, ``fisher_vmap`` switches to eager for its call
unless ``--no-eager-switch`` (then SDPA runs per sample inside vmap: no batching rule on CPU).
Prints both times (wall clock, and the process's CPU time, which other jobs on a shared machine
disturb less), the ratios loop / vmap (target >= 3x) and the largest relative difference between
the two Fishers, a check that they computed the same thing.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch

from fishertools import encode_records, fisher_loop, fisher_vmap, read_records, select_parameters
from fishertools._fisher import length_chunks
from fishertools._models import load_model, load_tokenizer

TOPICS = ("the river", "a small company", "the old library", "prime numbers", "a chess opening")


def synthetic_records(n: int) -> list[dict[str, str]]:
    """Prompt/response pairs of a realistic chat length (~20 + ~60 tokens), all different."""
    records = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        prompt = f"Question {i}: explain in a few sentences what is special about {topic}."
        response = (
            f"Here is a short answer about {topic} (note {i}). It has a long history, and people "
            f"often describe it in different ways. The key point is that {topic} changes over "
            "time, so one has to look at it step by step and compare the details carefully."
        )
        records.append({"prompt": prompt, "response": response})
    return records


def max_rel_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(((a[n] - b[n]).abs().max() / a[n].abs().max().clamp_min(1e-30)).item() for n in a)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="HF model folder (default: a tiny random Llama built on the fly).",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="prompt/response JSONL (default: synthetic records).",
    )
    parser.add_argument("--samples", type=int, default=8, help="Samples per estimator run.")
    parser.add_argument("--chunk-size", type=int, default=8, help="vmap chunk size.")
    parser.add_argument(
        "--max-padding",
        type=float,
        default=0.1,
        help="vmap: close a chunk early rather than pad it by more than this fraction.",
    )
    parser.add_argument(
        "--attn",
        choices=("eager", "sdpa"),
        default="eager",
        help="Attention implementation of the model (default: eager, as fishertools loads it).",
    )
    parser.add_argument(
        "--no-eager-switch",
        dest="eager_switch",
        action="store_false",
        help="Let fisher_vmap keep the model's attention instead of switching to eager.",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="Timed runs of each estimator (best is kept)."
    )
    parser.add_argument(
        "--include", action="append", default=None, help="Parameter-name pattern (repeatable)."
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's choice)."
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the numbers here.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            from mixsd_core.testing import build_tiny_model  # a tool, not fishertools itself

            model_dir = build_tiny_model(Path(tmp) / "tiny", seed=0)
        data = args.data
        if data is None:
            data = Path(tmp) / "bench.jsonl"
            data.write_text("".join(json.dumps(r) + "\n" for r in synthetic_records(args.samples)))
        model, tokenizer = (
            load_model(model_dir.expanduser()),
            load_tokenizer(model_dir.expanduser()),
        )
        samples = encode_records(read_records(data, args.samples), tokenizer, max_length=1024)
    if args.attn != "eager":
        model.set_attn_implementation(args.attn)
    names = select_parameters(model, args.include)
    n_params = sum(p.numel() for n, p in model.named_parameters() if n in set(names))
    tokens = [len(s.input_ids) for s in samples]
    chunks = [
        [tokens[i] for i in c] for c in length_chunks(tokens, args.chunk_size, args.max_padding)
    ]
    padding = sum(len(c) * max(c) for c in chunks) / sum(tokens) - 1
    print(
        f"model {model_dir}: {n_params:,} parameters in {len(names)} tensors; {len(samples)} samples, "
        f"{min(tokens)}-{max(tokens)} tokens; chunk {args.chunk_size}: {len(chunks)} chunks, "
        f"{padding:.1%} padding; "
        f"{torch.get_num_threads()} threads; "
        f"attention {model.config._attn_implementation}"
        f"{' (vmap: eager)' if args.eager_switch and args.attn != 'eager' else ''}"
    )

    fisher_loop(model, samples[:1], names)  # warm-up: allocator, kernels, lazy inits
    fisher_vmap(model, samples[:1], names, chunk_size=1, eager_attention=args.eager_switch)
    times: dict[str, list[float]] = {"loop": [], "vmap": []}
    cpu: dict[str, list[float]] = {"loop": [], "vmap": []}
    results = {}
    rss = {}
    for _ in range(args.repeats):
        for method in ("loop", "vmap"):
            start, cpu_start = time.perf_counter(), time.process_time()
            if method == "loop":
                results[method] = fisher_loop(model, samples, names)
            else:
                results[method] = fisher_vmap(
                    model,
                    samples,
                    names,
                    chunk_size=args.chunk_size,
                    max_padding=args.max_padding,
                    eager_attention=args.eager_switch,
                )
            times[method].append(time.perf_counter() - start)
            cpu[method].append(time.process_time() - cpu_start)
            rss[method] = peak_rss_gib()
            print(
                f"  {method}: {times[method][-1]:.2f} s, CPU {cpu[method][-1]:.2f} s "
                f"(peak RSS so far {rss[method]:.2f} GiB)",
                flush=True,
            )

    loop, vec = min(times["loop"]), min(times["vmap"])
    loop_cpu, vec_cpu = min(cpu["loop"]), min(cpu["vmap"])
    diff = max_rel_diff(results["loop"], results["vmap"])
    print(f"loop {loop:.2f} s ({loop / len(samples):.3f} s/sample), CPU {loop_cpu:.2f} s")
    print(f"vmap {vec:.2f} s ({vec / len(samples):.3f} s/sample), CPU {vec_cpu:.2f} s")
    print(
        f"speed-up loop / vmap: {loop / vec:.2f}x (CPU time {loop_cpu / vec_cpu:.2f}x)   "
        f"max relative difference {diff:.1e}"
    )
    if args.json:
        args.json.write_text(json.dumps({
            "model": str(model_dir), "params": n_params, "samples": len(samples),
            "chunk_size": args.chunk_size, "max_padding": args.max_padding,
            "chunks": len(chunks), "padding": padding, "threads": torch.get_num_threads(),
            "attn": args.attn, "vmap_eager_switch": args.eager_switch,
            "loop_s": times["loop"], "vmap_s": times["vmap"], "speedup": loop / vec,
            "loop_cpu_s": cpu["loop"], "vmap_cpu_s": cpu["vmap"],
            "cpu_speedup": loop_cpu / vec_cpu,
            "max_rel_diff": diff, "peak_rss_gib": rss,
        }, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
