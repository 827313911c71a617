"""The effective naive share of finished rollouts: at the positions where the expert's and the
naive side's greedy tokens differ, how often did the target take the naive one? (issue 18)

A traced rollout (adaptive mixing, repair, ``trace``) records its sides while decoding; a paper
(bernoulli) rollout records only its mask, which also counts the positions where both sides
agree. This replays each kept target under the base model, teacher-forced after its own naive
and expert prompts, and reads the two argmaxes at every target position:

    disagreement: argmax_E != argmax_N;  side: N where the target token is argmax_N

    uv run python tools/effective_share.py --model qwen2.5-coder-0.5b-instruct \
        runs/cpu-claims/rollouts/mixsd-a0.5.jsonl runs/cpu-claims/rollouts/mixsd-a0.3.jsonl
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

from mixsd_base import read_jsonl
from mixsd_core import load_model


@torch.no_grad()
def _argmaxes(model: Any, tokenizer: Any, prompt: str, target: list[int]) -> list[int]:
    """The model's greedy token at each target position, after ``prompt`` and the target's
    tokens before it."""
    prefix = tokenizer(prompt, add_special_tokens=False).input_ids
    ids = torch.tensor([prefix + target], device=model.device)
    logits = model(ids).logits[0, len(prefix) - 1 : len(prefix) - 1 + len(target)]
    return logits.argmax(-1).tolist()


def effective_share(model: Any, tokenizer: Any, records: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"targets", "tokens", "disagreements", "naive", "share", "mask_share"}`` over the kept
    records (``mask_share``: the recorded mask's naive share over every position)."""
    tokens = disagreements = naive = masked = 0
    for record in records:
        target = record["target_ids"]
        expert = _argmaxes(model, tokenizer, record["expert_prompt"], target)
        plain = _argmaxes(model, tokenizer, record["naive_prompt"], target)
        for token, e, n in zip(target, expert, plain, strict=True):
            if e != n:
                disagreements += 1
                naive += token == n
        tokens += len(target)
        masked += sum(record["mask"])
    return {
        "targets": len(records),
        "tokens": tokens,
        "disagreements": disagreements,
        "naive": naive,
        "share": naive / disagreements if disagreements else None,
        "mask_share": masked / tokens if tokens else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="rollout JSONL files (mixsd rollout output)")
    parser.add_argument("--model", default="default", help="the base model the rollouts used")
    args = parser.parse_args()
    model, tokenizer = load_model(args.model)
    model.eval()
    for path in args.files:
        kept = [r for r in read_jsonl(path) if r.get("verified") is not False]
        print(json.dumps({"file": path, **effective_share(model, tokenizer, kept)}))


if __name__ == "__main__":
    main()
