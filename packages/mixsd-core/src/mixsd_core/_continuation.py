"""Teacher-forced checks of a continuation: is it what greedy decoding would write after a prompt?

Knowledge editing measures efficacy this way (MEMIT's "rewrite" score): for the bare prompt
"Vroround Stihem was born in" and the object " Getraesk", feed prompt + object once and compare
each object token with the argmax before it. One forward pass per batch, no sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["continuation_ids", "greedy_continuation_matches"]


def continuation_ids(tokenizer: Any, prompt: str, continuation: str) -> list[int]:
    """The continuation's tokens, with the space that separates a word from the prompt."""
    sep = "" if prompt.endswith((" ", "\n")) or continuation.startswith(" ") else " "
    return list(tokenizer(sep + continuation, add_special_tokens=False)["input_ids"])


def greedy_continuation_matches(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    continuations: Sequence[str],
    *,
    batch_size: int = 16,
) -> list[dict[str, bool]]:
    """Per pair: ``top1`` (the first continuation token is the argmax after the prompt) and
    ``exact`` (greedy decoding from the prompt writes the whole continuation)."""
    import torch

    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    results: list[dict[str, bool]] = []
    everything = list(zip(prompts, continuations, strict=True))
    for start in range(0, len(everything), batch_size):
        pairs = everything[start : start + batch_size]
        heads = [list(tokenizer(p, add_special_tokens=True)["input_ids"]) for p, _ in pairs]
        tails = [continuation_ids(tokenizer, p, c) for p, c in pairs]
        width = max(len(h) + len(t) for h, t in zip(heads, tails, strict=True))
        # Right padding keeps every real token at its index, so positions need no shifting.
        ids = torch.full((len(pairs), width), int(pad or 0), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, (head, tail) in enumerate(zip(heads, tails, strict=True)):
            ids[row, : len(head) + len(tail)] = torch.tensor(head + tail)
            mask[row, : len(head) + len(tail)] = 1
        with torch.no_grad():
            logits = model(
                input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False
            ).logits
        for row, (head, tail) in enumerate(zip(heads, tails, strict=True)):
            predicted = logits[row, len(head) - 1 : len(head) - 1 + len(tail)].argmax(-1).tolist()
            results.append({"top1": predicted[0] == tail[0], "exact": predicted == tail})
    return results
