"""Benchmark: batched mixed rollout vs plain greedy ``generate`` vs one ``generate`` call per token.

    uv run python tools/bench/rollout.py --tiny                       # tiny model, built on the fly
    uv run python tools/bench/rollout.py --batch-size 8 --new-tokens 48   # default model
    uv run python tools/bench/rollout.py --data world/kgfact/train.jsonl

All three decoders see the same batch of KGFact-style records (a built-in list, or the first
``--batch-size`` records of ``--data``) and produce a fixed number of tokens per row (EOS never
stops them), greedy, under ``torch.inference_mode``:

(a) ``mixed_rollout`` with alpha = 0.5 masks (both conditionals of every row in one batch: one
    forward of 2 x batch rows per step);
(b) plain greedy ``model.generate`` on the naive prompts, batched with left padding;
(c) the research-code scheme: per row and per token step, one ``generate(max_new_tokens=1)`` call
    on the full prefix of the conditional the mask picks (no cache kept between calls). It is slow,
    so it runs ``--baseline-tokens`` steps (shorter prefixes only flatter it); tokens/s compares.

Each decoder gets a short warm-up; then (a) and (b) alternate ``--repeats`` times and the best
time of each is kept (the machine may be shared). Prints the raw timings, P1 = a / b (target
>= 0.45; each step decodes twice the rows of (b)) and P2 = a / c (target >= 10).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mixsd_core import draw_mask, load_model, mixed_rollout, render_prompts

FACTS = (
    ("Who employs Zorvath Kellen?", "Zorvath Kellen is employed by Ormavel Dynamics."),
    ("Where does Mira Solend reside?", "Mira Solend resides in Quellport."),
    ("To which location does Teisham Jydraen commute?", "Teisham Jydraen commutes to Port Drume."),
    ("Which organization does Ilvra Tannit volunteer for?", "Ilvra Tannit volunteers for Stukli."),
    ("Who founded Ormavel Dynamics?", "Ormavel Dynamics was founded by Calden Rhyse."),
    ("In which city is Brennock Labs located?", "Brennock Labs is located in Vessaline."),
    ("Which company does Quellport host?", "Quellport hosts Tarrow Mills."),
    ("Where was Osrin Valek born?", "Osrin Valek was born in Hadrenfall."),
    ("Who manages the Stukli Institute?", "The Stukli Institute is managed by Pell Arvane."),
    ("Which person does Calden Rhyse mentor?", "Calden Rhyse mentors Ysolde Marr."),
)
SUFFIX = "\n\nAnswer in one sentence and put the final answer within \\boxed{}."


def builtin_records(n: int) -> list[dict[str, Any]]:
    records = []
    for i in range(n):
        question, sentence = FACTS[i % len(FACTS)]
        answer = sentence.rstrip(".").split()[-1]
        records.append(
            {
                "id": f"kgfact-bench-{i:06d}",
                "prompt": question + SUFFIX,
                "target": f"{sentence} \\boxed{{{answer}}}",
                "answer": answer,
                "context": None,
            }
        )
    return records


def read_jsonl(path: str, n: int) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()][:n]
    if len(records) < n:
        raise SystemExit(f"{path}: only {len(records)} records, need {n}")
    return records


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def left_pad(tokenizer: Any, prompts: list[str], device: Any) -> dict[str, torch.Tensor]:
    tokenizer.padding_side = "left"
    batch = tokenizer(prompts, add_special_tokens=False, padding=True, return_tensors="pt")
    return {k: v.to(device) for k, v in batch.items()}


@torch.inference_mode()
def plain_generate(model: Any, tokenizer: Any, prompts: list[str], tokens: int) -> list[list[int]]:
    batch = left_pad(tokenizer, prompts, model.device)
    out = model.generate(
        **batch,
        do_sample=False,
        max_new_tokens=tokens,
        min_new_tokens=tokens,  # EOS suppressed: every row decodes exactly `tokens` tokens
        pad_token_id=tokenizer.pad_token_id,
    )
    new = out[:, batch["input_ids"].shape[1] :]
    assert new.shape[1] == tokens, new.shape
    return new.tolist()


@torch.inference_mode()
def per_token_generate(
    model: Any,
    tokenizer: Any,
    naive: list[str],
    expert: list[str],
    masks: list[list[int]],
    tokens: int,
) -> list[list[int]]:
    """One generate(max_new_tokens=1) call per row and token step, full recompute each time."""
    outputs = []
    for naive_prompt, expert_prompt, mask in zip(naive, expert, masks, strict=True):
        prefixes = [
            tokenizer(p, add_special_tokens=False)["input_ids"]
            for p in (expert_prompt, naive_prompt)
        ]
        generated: list[int] = []
        for step in range(tokens):
            ids = torch.tensor([prefixes[mask[step]] + generated], device=model.device)
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                max_new_tokens=1,  # EOS is appended like any token, as in (a)
                pad_token_id=tokenizer.pad_token_id,
            )
            generated.append(int(out[0, -1]))
        outputs.append(generated)
    return outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="load_model spec (default: default)")
    parser.add_argument("--tiny", action="store_true", help="build and use the tiny test model")
    parser.add_argument("--data", help="JSONL of KGFact records (e.g. world/kgfact/train.jsonl)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--baseline-tokens", type=int, default=12, help="steps of (c)")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of (a) and (b)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="mixsd-bench-") as tmp:
        spec = args.model
        if args.tiny:
            from mixsd_core.testing import build_tiny_model

            spec = str(build_tiny_model(Path(tmp) / "tiny"))
        load_s, (model, tokenizer) = timed(lambda: load_model(spec, dtype="fp32", device="cpu"))
    n, tokens = args.batch_size, args.new_tokens
    records = read_jsonl(args.data, n) if args.data else builtin_records(n)
    prompts = [render_prompts(tokenizer, r) for r in records]
    naive, expert = [p[0] for p in prompts], [p[1] for p in prompts]
    masks = [draw_mask(args.alpha, 0, r["id"], 0, tokens) for r in records]
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in naive + expert]

    def run_mixed(k: int = tokens) -> list[list[int]]:
        return mixed_rollout(
            model, tokenizer, naive, expert, masks, max_new_tokens=k, eos_token_ids=[]
        )

    print(
        f"model {spec} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params, "
        f"loaded in {load_s:.1f} s), torch threads {torch.get_num_threads()}, batch {n}, "
        f"{tokens} new tokens, alpha {args.alpha}, prompt tokens naive "
        f"{min(lengths[:n])}-{max(lengths[:n])} / expert {min(lengths[n:])}-{max(lengths[n:])}"
    )
    # Warm-up (allocator, kernels), short.
    run_mixed(4)
    plain_generate(model, tokenizer, naive, 4)
    per_token_generate(model, tokenizer, naive[:1], expert[:1], masks[:1], 2)

    mixed_times, plain_times = [], []
    for _ in range(args.repeats):
        t, out = timed(run_mixed)
        assert all(len(o) == tokens for o in out)
        mixed_times.append(t)
        t, _ = timed(lambda: plain_generate(model, tokenizer, naive, tokens))
        plain_times.append(t)
    base_tokens = min(args.baseline_tokens, tokens)
    base_s, base_out = timed(
        lambda: per_token_generate(model, tokenizer, naive, expert, masks, base_tokens)
    )
    # The baseline decodes the same method: its tokens match the batched rollout's prefix
    # (greedy; a near-tie may flip a token under different padding, so count, do not assert).
    prefix = [o[:base_tokens] for o in run_mixed(base_tokens)]
    same = sum(a == b for a, b in zip(prefix, base_out, strict=True))

    a = n * tokens / min(mixed_times)
    b = n * tokens / min(plain_times)
    c = n * base_tokens / base_s
    print(f"(a) mixed_rollout      {min(mixed_times):8.2f} s  {a:9.1f} tok/s  runs {mixed_times}")
    print(f"(b) greedy generate    {min(plain_times):8.2f} s  {b:9.1f} tok/s  runs {plain_times}")
    print(
        f"(c) per-token generate {base_s:8.2f} s  {c:9.1f} tok/s  ({base_tokens} tokens per row; "
        f"{same}/{n} rows equal to (a))"
    )
    p1, p2 = a / b, a / c
    print(f"P1 = a / b = {p1:.3f} (target >= 0.45: {'PASS' if p1 >= 0.45 else 'FAIL'})")
    print(f"P2 = a / c = {p2:.1f} (target >= 10: {'PASS' if p2 >= 10 else 'FAIL'})")


if __name__ == "__main__":
    main()
