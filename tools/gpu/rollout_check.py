"""GPU check of the mixed-rollout decoder and its mixing policies (#18: "the batched decoder must
equal the reference token for token", here on CUDA), and its speed at a paper model's shape.

1. The tiny random chat model of the tests on the device, fp32 and bf16: for each policy of
   ``mixsd_core.testing.EXAMPLE_POLICIES`` (bernoulli, gate, exchange, guard, gate + answer
   guard) the batched, cached ``traced_mixed_rollout`` against the no-cache
   ``reference_mixed_row``, row by row: tokens, sides and decisions. fp32 must agree
   exactly (exit 1 otherwise); bf16 is reported (a row's logits there depend on its batch's
   padding, so near-ties may break another way, as on a CPU).
2. A randomly initialised Qwen3 of Qwen3-1.7B's shape (config written here, nothing is
   downloaded) in bf16: B rows x 256 new tokens (two streams each, so 2B sequences a forward)
   through ``mixed_rollout`` (the paper's mask) and ``traced_mixed_rollout`` (the policies'
   path, guard): new tokens per second and peak memory.

    PYTHONPATH=$(ls -d packages/*/src | paste -sd:) python tools/gpu/rollout_check.py
    uv run --frozen python tools/gpu/rollout_check.py --device cpu --tiny   # the same on CPU
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from mixsd_core import (
    draw_mask,
    load_model,
    mixed_rollout,
    reference_mixed_row,
    render_prompts,
    stop_token_ids,
    traced_mixed_rollout,
)
from mixsd_core._rollout_policy import answer_variants, ending_token_ids
from mixsd_core.pytest_plugin import make_records
from mixsd_core.testing import EXAMPLE_POLICIES, build_tiny_model

QWEN3_1_7B: dict[str, Any] = {
    "hidden_size": 2048,
    "num_hidden_layers": 28,
    "intermediate_size": 6144,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
}
TINY_SHAPE = {**QWEN3_1_7B, "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128}
TINY_SHAPE |= {"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16}
TINY_SHAPE["vocab_size"] = 512


def policy_agreement(folder: Path, device: str, dtype: str, steps: int, batch: int) -> dict:
    """Per policy: rows whose tokens / sides equal the reference's, out of all rows."""
    model, tok = load_model(folder, device=device, dtype=dtype)
    records = make_records(16)
    rendered = [render_prompts(tok, r) for r in records]
    naive, expert = [n for n, _ in rendered], [e for _, e in rendered]
    eos = stop_token_ids(model, tok)
    answers = [answer_variants(tok, r["answer"]) for r in records]
    ends = ending_token_ids(tok, eos)
    masks = [draw_mask(0.5, 1, r["id"], 0, steps) for r in records]
    out = {}
    for name, mixing in EXAMPLE_POLICIES.items():
        got = []
        for s in range(0, len(records), batch):
            part = slice(s, s + batch)
            got += traced_mixed_rollout(
                model,
                tok,
                naive[part],
                expert[part],
                masks[part],
                max_new_tokens=steps,
                eos_token_ids=eos,
                mixing=mixing,
                answer_ids=answers[part],
                ending_ids=ends,
            )
        reference = [
            reference_mixed_row(
                model,
                tok,
                n,
                e,
                m,
                max_new_tokens=steps,
                eos_token_ids=eos,
                mixing=mixing,
                answer_ids=a,
                ending_ids=ends,
            )
            for n, e, m, a in zip(naive, expert, masks, answers, strict=True)
        ]
        same = sum(
            g.tokens == r.tokens and g.sides == r.sides and g.takes_naive == r.takes_naive
            for g, r in zip(got, reference, strict=True)
        )
        sides = "".join(r.sides for r in reference)
        out[name] = (same, len(records), sides.count("N"), sides.count("E"))
    return out


def shaped_model(shape: dict[str, Any], device: str) -> tuple[Any, Any]:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from mixsd_core.testing import build_tiny_tokenizer

    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)  # allocate the weights in bf16, on the device
    with torch.device(device):
        model = Qwen3ForCausalLM(Qwen3Config(**shape)).eval()
    torch.set_default_dtype(torch.float32)
    tok = build_tiny_tokenizer()  # ids stay below every vocabulary here
    return model, tok


def rollout_speed(
    shape: dict[str, Any], device: str, rows: int, steps: int
) -> dict[str, dict[str, float]]:
    """New tokens per second of the paper's decoder and of the traced one (the policies' path,
    which decides row by row in Python), and the peak memory of each."""
    model, tok = shaped_model(shape, device)
    records = make_records(rows)
    rendered = [render_prompts(tok, r) for r in records]
    naive, expert = [n for n, _ in rendered], [e for _, e in rendered]
    masks = [draw_mask(0.5, 0, r["id"], 0, steps) for r in records]
    decoders = {
        "mixed_rollout": lambda n: mixed_rollout(
            model, tok, naive[:n], expert[:n], masks[:n], max_new_tokens=steps, eos_token_ids=[]
        ),
        "traced (guard)": lambda n: [
            r.tokens
            for r in traced_mixed_rollout(
                model,
                tok,
                naive[:n],
                expert[:n],
                masks[:n],
                max_new_tokens=steps,
                eos_token_ids=[],
                mixing=EXAMPLE_POLICIES["guard"],
                answer_ids=[[] for _ in range(n)],
            )
        ],
    }
    # Warm-up at the timed size: the KV cache grows every step, and the first call at each
    # shape pays for the kernels' selection (a 2-row warm-up left the first decoder timed 2.5x
    # slower than the second on an H200).
    for decode in decoders.values():
        decode(rows)
    out = {}
    for name, decode in decoders.items():
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        # no stop token: every row decodes all ``steps`` tokens, so the count is exact
        outputs = decode(rows)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        peak = torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else float("nan")
        new_tokens = sum(len(o) for o in outputs)
        out[name] = {"seconds": seconds, "tokens_per_s": new_tokens / seconds, "peak_gb": peak}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a tiny shape for part 2 (CPU)")
    parser.add_argument("--steps", type=int, default=24, help="new tokens in part 1")
    parser.add_argument("--rows", type=int, nargs="+", default=[16, 64], help="part 2 batches")
    parser.add_argument("--speed-steps", type=int, default=256, help="new tokens in part 2")
    parser.add_argument("--speed-only", action="store_true", help="skip part 1")
    args = parser.parse_args()
    if args.device == "cuda":
        print(torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_model(Path(tmp) / "tiny")
        for dtype in () if args.speed_only else ("float32", "bfloat16"):
            for batch in (3, 8):
                result = policy_agreement(folder, args.device, dtype, args.steps, batch)
                for name, (same, n, naive, expert) in result.items():
                    print(
                        f"[agree] {dtype} batch {batch} {name}: {same}/{n} rows equal the "
                        f"reference (sides N {naive}, E {expert})",
                        flush=True,
                    )
                    failed |= dtype == "float32" and same != n
    shape = TINY_SHAPE if args.tiny else QWEN3_1_7B
    for rows in args.rows:
        for name, s in rollout_speed(shape, args.device, rows, args.speed_steps).items():
            print(
                f"[speed] {'tiny' if args.tiny else 'Qwen3-1.7B'} shape bf16, {name}, {rows} "
                f"rows x {args.speed_steps} tokens: {s['seconds']:.1f} s, "
                f"{s['tokens_per_s']:.0f} new tokens/s, peak {s['peak_gb']:.1f} GB",
                flush=True,
            )
    print("FAILED: fp32 batched != reference" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
