"""Benchmark: a linear layer in bf16 vs fp32 on this CPU, at decode and training shapes.

    uv run python tools/bench/matmul_dtype.py
    uv run python tools/bench/matmul_dtype.py --rows 4 64 1024 --width 896 --out-width 4864

Whether bf16 would shorten a CPU run: ``torch.nn.functional.linear`` of ``rows`` x ``width`` by a
``out-width`` x ``width`` weight (default: one MLP projection of Qwen2.5-0.5B), in each dtype,
after a warm-up, the best of ``--repeats`` timings of ``--calls`` calls. A handful of rows is a
decode step (the weights' read dominates); a thousand rows is a training batch or a prefill
(the arithmetic dominates, where AMX's bf16 tiles help). Prints the CPU's bf16 flags, each
time in ms and GFLOP/s, and the speed-up fp32 / bf16 per row count.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


def best_time(
    rows: int, width: int, out_width: int, dtype: torch.dtype, calls: int, repeats: int
) -> float:
    """Seconds per call, the best of ``repeats`` runs of ``calls`` calls."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, width, generator=generator).to(dtype)
    w = torch.randn(out_width, width, generator=generator).to(dtype)
    for _ in range(3):
        torch.nn.functional.linear(x, w)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            torch.nn.functional.linear(x, w)
        times.append((time.perf_counter() - start) / calls)
    return min(times)


def cpu_flags() -> str:
    """The bf16-related flags /proc/cpuinfo lists (empty where it is absent)."""
    info = Path("/proc/cpuinfo")
    words = info.read_text().split() if info.is_file() else []
    return " ".join(sorted({w for w in words if "bf16" in w or w.startswith("amx")}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[8, 64, 1024])
    parser.add_argument("--width", type=int, default=896)
    parser.add_argument("--out-width", type=int, default=4864)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}; CPU flags: {cpu_flags() or 'none with bf16'}")
    for rows in args.rows:
        flops = 2 * rows * args.width * args.out_width
        seconds = {
            name: best_time(rows, args.width, args.out_width, dtype, args.calls, args.repeats)
            for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
        }
        shown = ", ".join(
            f"{name} {s * 1e3:.2f} ms ({flops / s / 1e9:.0f} GFLOP/s)"
            for name, s in seconds.items()
        )
        print(f"rows {rows:5d}: {shown}; fp32 / bf16 = {seconds['fp32'] / seconds['bf16']:.2f}x")


if __name__ == "__main__":
    main()
