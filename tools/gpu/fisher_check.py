"""GPU check of fishertools' Fisher at Qwen3-8B's shape (#16 item 7): one 141 GB GPU must hold it.

Builds a randomly initialised Qwen3 with Qwen3-8B's shape (config written here, nothing is
downloaded) in bf16 on CUDA, runs the Fisher with the paper's settings (Appendix E.1: batch size
1, per-sample loss = SUM of the response tokens' NLL, gradients in the model's dtype cast to fp32
before squaring, fp32 accumulator: fishertools' FisherConfig defaults) on a few short synthetic
samples, and prints the planned and peak GPU memory and the time per sample. Exits 1 when the
Fisher is not finite and positive, or the peak exceeds the plan by more than 25% (activations
of short samples are small next to the 8 bytes/parameter plan).

    PYTHONPATH=$(ls -d packages/*/src | paste -sd:) python tools/gpu/fisher_check.py
    uv run --frozen python tools/gpu/fisher_check.py --tiny    # the same on CPU, tiny config
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from fishertools import EncodedSample, FisherConfig, fisher_loop, memory_plan, select_parameters

QWEN3_8B: dict[str, Any] = {
    "hidden_size": 4096,
    "num_hidden_layers": 36,
    "intermediate_size": 12288,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "tie_word_embeddings": False,
}
TINY = {**QWEN3_8B, "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128}
TINY |= {"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 512}


def synthetic_samples(n: int, vocab: int) -> list[EncodedSample]:
    """``n`` random prompt + response sequences, responses of different lengths (loss on them)."""
    gen = torch.Generator().manual_seed(0)
    samples = []
    for i in range(n):
        prompt, response = 32, 16 * (i + 1)
        ids = torch.randint(vocab, (prompt + response,), generator=gen)
        mask = torch.cat([torch.zeros(prompt), torch.ones(response)])
        samples.append(EncodedSample(ids, mask, i))
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny config on CPU (a smoke test)")
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
    parser.add_argument("--samples", type=int, default=4)
    args = parser.parse_args()
    device = "cpu" if args.tiny else "cuda"
    dtype = getattr(torch, args.dtype)
    config = FisherConfig(dtype=args.dtype, device=device)  # the paper's: sum, loop (batch 1)

    shape = TINY if args.tiny else QWEN3_8B
    began = time.perf_counter()
    torch.set_default_dtype(dtype)  # allocate the weights in their dtype, on the device
    with torch.device(device):
        model = Qwen3ForCausalLM(Qwen3Config(**shape)).eval()
    torch.set_default_dtype(torch.float32)
    names = select_parameters(model)
    num_params = sum(p.numel() for p in model.parameters())
    plan = memory_plan(num_params, args.dtype, method=config.method)
    print(
        f"model: {num_params:,} parameters, {args.dtype} on {device}, built in "
        f"{time.perf_counter() - began:.1f} s; plan: {plan.describe()}"
    )

    samples = synthetic_samples(args.samples, shape["vocab_size"])
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    fisher = fisher_loop(model, samples, names, reduction=config.reduction)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - began) / len(samples)
    print(
        f"fisher: method {config.method}, reduction {config.reduction}, {len(samples)} samples "
        f"({sum(int(s.loss_mask.sum()) for s in samples)} response tokens), "
        f"{seconds:.3f} s per sample"
    )

    failures = []
    if any(f.dtype != torch.float32 for f in fisher.values()):
        failures.append("the Fisher is not float32")
    if not all(bool(torch.isfinite(f).all()) and bool((f >= 0).all()) for f in fisher.values()):
        failures.append("the Fisher has negative or non-finite entries")
    if sum(float(f.double().sum()) for f in fisher.values()) <= 0:
        failures.append("the Fisher is zero")
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated()
        total = torch.cuda.get_device_properties(0).total_memory
        print(
            f"peak GPU memory: {peak / 1e9:.1f} GB of {total / 1e9:.1f} GB "
            f"(plan {plan.total / 1e9:.1f} GB + activations)"
        )
        if peak > 1.25 * plan.total:
            failures.append(f"peak {peak / 1e9:.1f} GB exceeds the plan by more than 25%")
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    print("OK" if not failures else "FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
