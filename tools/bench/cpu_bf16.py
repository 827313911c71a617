"""Benchmark: the claims run's three kinds of work in bf16 vs fp32 on this CPU.

    uv run python tools/bench/cpu_bf16.py                                  # the tests' tiny model
    uv run python tools/bench/cpu_bf16.py --model qwen2.5-coder-0.5b-instruct

Whether ``configs/cpu-claims.yaml`` gets faster in bf16 (the paper's dtype; this CPU has AMX
bf16 tiles, see ``matmul_dtype.py``), measured on the real model and shapes rather than one
matmul. Each kind runs in fp32 and in bf16, alternating, ``--repeats`` times; the median is kept.

* train: one LoRA optimizer step (r 16, every linear layer, AdamW) on ``--batch`` rows of
  ``--train-tokens`` tokens. fp32 as the claims run trains; bf16 as ``bf16: true`` trains on a
  CPU: fp32 weights under ``torch.autocast("cpu", torch.bfloat16)`` (the Trainer's mixed
  precision), so the LoRA weights and their optimizer stay fp32.
* decode: ``generate`` of ``--decode-rows`` rows (a rollout batch of 16 is 32 rows: expert and
  naive) for ``--new-tokens`` greedy tokens after a ``--prompt-tokens`` prompt, with the weights
  cast to each dtype (the rollout and evaluation stages' ``dtype``).
* fisher: one per-sample gradient (batch 1, ``--fisher-tokens`` tokens, every parameter), the
  weights cast to each dtype (the fisher section's ``dtype``).

Prints seconds per unit of work in each dtype and the speed-up fp32 / bf16 for each kind. On a
busy machine both dtypes share the slowdown (they alternate); the ratio is what to read.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def load(spec: str) -> Any:
    """The model of ``spec`` in fp32; 'tiny' is the tests' tiny random model, built on the fly."""
    from mixsd_core import load_model

    if spec != "tiny":
        return load_model(spec, dtype="fp32", device="cpu")[0]
    from mixsd_core.testing import build_tiny_model

    with tempfile.TemporaryDirectory(prefix="mixsd-bench-") as tmp:
        return load_model(str(build_tiny_model(Path(tmp) / "tiny")), dtype="fp32", device="cpu")[0]


def ids(rows: int, tokens: int, vocab: int, seed: int) -> torch.Tensor:
    return torch.randint(0, vocab, (rows, tokens), generator=torch.Generator().manual_seed(seed))


def train_step(base: Any, batch: torch.Tensor, bf16: bool) -> Callable[[], None]:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        copy.deepcopy(base), LoraConfig(r=16, lora_alpha=32, target_modules="all-linear")
    )
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def decode(base: Any, prompt: torch.Tensor, new_tokens: int, bf16: bool) -> Callable[[], None]:
    model = copy.deepcopy(base).to(torch.bfloat16 if bf16 else torch.float32).eval()
    mask = torch.ones_like(prompt)

    def run() -> None:
        with torch.inference_mode():
            model.generate(
                input_ids=prompt,
                attention_mask=mask,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=0,
            )

    return run


def fisher_sample(base: Any, sample: torch.Tensor, bf16: bool) -> Callable[[], None]:
    model = copy.deepcopy(base).to(torch.bfloat16 if bf16 else torch.float32)
    model.train()

    def run() -> None:
        loss = model(input_ids=sample, labels=sample).loss
        grads = torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad])
        for g in grads:
            g.float().square()

    return run


def timed(work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="'tiny' or a model spec")
    parser.add_argument("--kinds", nargs="+", default=["train", "decode", "fisher"])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--train-tokens", type=int, default=230)
    parser.add_argument("--decode-rows", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=120)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--fisher-tokens", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base = load(args.model)
    vocab = base.config.vocab_size
    builders: dict[str, Callable[[bool], Callable[[], None]]] = {
        "train": lambda bf16: train_step(base, ids(args.batch, args.train_tokens, vocab, 1), bf16),
        "decode": lambda bf16: decode(
            base, ids(args.decode_rows, args.prompt_tokens, vocab, 2), args.new_tokens, bf16
        ),
        "fisher": lambda bf16: fisher_sample(base, ids(1, args.fisher_tokens, vocab, 3), bf16),
    }
    print(f"model {args.model}; torch threads {torch.get_num_threads()}")
    for kind in args.kinds:
        works = {dtype: builders[kind](dtype == "bf16") for dtype in ("fp32", "bf16")}
        for work in works.values():
            work()  # warm-up (and the first optimizer step's state allocation)
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for _ in range(args.repeats):
            for dtype, work in works.items():
                times[dtype].append(timed(work))
        fp32, bf16 = (statistics.median(times[d]) for d in ("fp32", "bf16"))
        print(f"{kind:7s} fp32 {fp32:8.3f} s  bf16 {bf16:8.3f} s  speed-up {fp32 / bf16:5.2f}x")
        del works


if __name__ == "__main__":
    main()
