"""Teacher-forced checks of a continuation: is it what greedy decoding would write after a prompt?

Knowledge editing measures efficacy this way (MEMIT's "rewrite" score): for the bare prompt
"Vroround Stihem was born in" and the object " Getraesk", feed prompt + object once and compare
each object token with the argmax before it. One forward pass per batch, no sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# pad_right lives in _tokens; imported here too because MEMIT's hooks import it from this module.
from mixsd_core._tokens import pad_right, pad_token_id

__all__ = ["continuation_ids", "greedy_continuation_matches", "pad_right"]


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
    results: list[dict[str, bool]] = []
    everything = list(zip(prompts, continuations, strict=True))
    for start in range(0, len(everything), batch_size):
        pairs = everything[start : start + batch_size]
        heads = [list(tokenizer(p, add_special_tokens=True)["input_ids"]) for p, _ in pairs]
        tails = [continuation_ids(tokenizer, p, c) for p, c in pairs]
        ids, mask = pad_right(
            [h + t for h, t in zip(heads, tails, strict=True)], pad_token_id(tokenizer), device
        )
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        for row, (head, tail) in enumerate(zip(heads, tails, strict=True)):
            predicted = logits[row, len(head) - 1 : len(head) - 1 + len(tail)].argmax(-1).tolist()
            results.append({"top1": predicted[0] == tail[0], "exact": predicted == tail})
    return results
