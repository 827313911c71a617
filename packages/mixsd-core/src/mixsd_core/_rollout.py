"""Mixed rollouts, Hugging Face backend: two conditionals of one model decoded in lockstep.

For each row, the expert prompt (question + gold target) and the naive prompt (question alone)
share one continuation. At step t the row's pre-drawn mask picks whose greedy token is appended
to *both* sequences: mask 1 -> the naive conditional's token, mask 0 -> the expert's.

The batched decoder keeps one KV cache per conditional (the two prompts have different lengths),
runs one forward per conditional per step over the rows still decoding, and drops rows that hit
EOS from the batch by index selection. ``reference_mixed_rollout`` is the same method written
the slow, obvious way (batch 1, no cache, full recompute each step): tests use it as ground truth.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import torch

from mixsd_core._masks import stable_seed

__all__ = ["mixed_rollout", "reference_mixed_rollout", "sample_rollout"]

Prompt = str | Sequence[int]


def _token_ids(tokenizer: Any, prompt: Prompt) -> list[int]:
    # Rendered chat prompts already hold their special tokens: never add a BOS on top.
    if isinstance(prompt, str):
        return list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    return [int(t) for t in prompt]


def _pad_id(tokenizer: Any) -> int:
    # Any id works (padded positions are masked out); pad == EOS for SmolLM2-style tokenizers.
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad or 0)


class _Stream:
    """One conditional's decoding state for a batch of rows: KV cache, mask, next position."""

    def __init__(self, model: Any, prompts: list[list[int]], pad_id: int) -> None:
        from transformers import DynamicCache

        device = model.device
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):  # left padding: every row's next token lands in one column
            ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            attention[i, width - len(p) :] = 1
        self.attention = attention.to(device)
        # Positions count real tokens only, as in `generate`; padded slots get a dummy 1.
        positions = (self.attention.cumsum(-1) - 1).masked_fill(self.attention == 0, 1)
        self.next_position = positions[:, -1] + 1
        self.cache = DynamicCache()
        self.logits = self._forward(model, ids.to(device), positions)

    def _forward(self, model: Any, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        out = model(
            input_ids=ids,
            attention_mask=self.attention,
            position_ids=positions,
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,  # the full-vocab logits of a whole prompt are never needed
        )
        return out.logits[:, -1].float()

    def keep(self, rows: torch.Tensor) -> None:
        self.cache.batch_select_indices(rows)
        self.attention = self.attention[rows]
        self.next_position = self.next_position[rows]
        self.logits = self.logits[rows]

    def advance(self, model: Any, tokens: torch.Tensor) -> None:
        ones = torch.ones_like(self.attention[:, :1])
        self.attention = torch.cat([self.attention, ones], dim=1)
        positions = self.next_position[:, None]
        self.next_position = self.next_position + 1
        self.logits = self._forward(model, tokens[:, None], positions)


# chooser(step, active_rows, logits_per_stream) -> the next token of every active row
Chooser = Callable[[int, torch.Tensor, list[torch.Tensor]], torch.Tensor]


@torch.inference_mode()
def _lockstep_decode(
    model: Any,
    prompt_sets: list[list[list[int]]],
    choose: Chooser,
    *,
    max_new_tokens: int,
    eos_token_ids: Sequence[int],
    pad_id: int,
) -> list[list[int]]:
    """Decode every stream of each row together; each chosen token is appended to all streams."""
    rows = len(prompt_sets[0])
    outputs: list[list[int]] = [[] for _ in range(rows)]
    if rows == 0 or max_new_tokens <= 0:
        return outputs
    streams = [_Stream(model, prompts, pad_id) for prompts in prompt_sets]
    active = torch.arange(rows, device=model.device)
    eos = torch.tensor(sorted(set(eos_token_ids)), dtype=torch.long, device=model.device)
    for step in range(max_new_tokens):
        tokens = choose(step, active, [s.logits for s in streams])
        for row, token in zip(active.tolist(), tokens.tolist(), strict=True):
            outputs[row].append(token)
        if step + 1 == max_new_tokens:
            break
        alive = ~torch.isin(tokens, eos)
        if not bool(alive.any()):
            break
        if not bool(alive.all()):  # finished rows leave the batch
            kept = alive.nonzero().squeeze(1)
            active, tokens = active[kept], tokens[kept]
            for stream in streams:
                stream.keep(kept)
        for stream in streams:
            stream.advance(model, tokens)
    return outputs


def _sample(
    logits: torch.Tensor, uniforms: torch.Tensor, temperature: float, top_p: float
) -> torch.Tensor:
    """Inverse-CDF sampling with one given uniform per row (so rows use their own streams)."""
    probs = torch.softmax(logits / temperature, dim=-1)
    probs, order = probs.sort(dim=-1, descending=True)
    cdf = probs.cumsum(-1)
    # Nucleus: keep the smallest prefix whose mass reaches top_p (always at least one token).
    probs = probs.masked_fill(cdf - probs >= top_p, 0.0)
    cdf = probs.cumsum(-1)
    picked = (cdf < uniforms[:, None] * cdf[:, -1:]).sum(-1).clamp(max=probs.shape[-1] - 1)
    return order.gather(-1, picked[:, None]).squeeze(1)


def _check_sampling(temperature: float, top_p: float) -> None:
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def mixed_rollout(
    model: Any,
    tokenizer: Any,
    naive_prompts: Sequence[Prompt],
    expert_prompts: Sequence[Prompt],
    masks: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_token_ids: Sequence[int],
    temperature: float = 0.0,
    top_p: float = 1.0,
    seeds: Sequence[int] | None = None,
) -> list[list[int]]:
    """Mixed continuations (token ids, EOS included when reached), one per row, batched.

    ``masks[i][t]`` = 1 takes the naive conditional's token at step t, 0 the expert's; each mask
    needs at least ``max_new_tokens`` entries. Greedy by default; with ``temperature`` > 0 the
    chosen conditional's distribution is sampled, row i from its own stream seeded by ``seeds[i]``.
    """
    if not len(naive_prompts) == len(expert_prompts) == len(masks):
        raise ValueError("naive_prompts, expert_prompts and masks must have the same length")
    if any(len(m) < max_new_tokens for m in masks):
        raise ValueError(f"every mask needs at least max_new_tokens={max_new_tokens} entries")
    _check_sampling(temperature, top_p)
    if temperature > 0 and (seeds is None or len(seeds) != len(masks)):
        raise ValueError("sampling (temperature > 0) needs one seed per row")
    device = model.device
    mask = torch.tensor([list(m[:max_new_tokens]) for m in masks], dtype=torch.bool, device=device)
    rngs = [random.Random(stable_seed("sample", s)) for s in seeds] if temperature > 0 else []

    def choose(step: int, active: torch.Tensor, logits: list[torch.Tensor]) -> torch.Tensor:
        naive_side = mask[active, step]
        if temperature == 0:
            expert_logits, naive_logits = logits
            return torch.where(naive_side, naive_logits.argmax(-1), expert_logits.argmax(-1))
        picked = torch.where(naive_side[:, None], logits[1], logits[0])
        uniforms = torch.tensor([rngs[r].random() for r in active.tolist()], device=device)
        return _sample(picked, uniforms, temperature, top_p)

    expert = [_token_ids(tokenizer, p) for p in expert_prompts]
    naive = [_token_ids(tokenizer, p) for p in naive_prompts]
    return _lockstep_decode(
        model,
        [expert, naive],
        choose,
        max_new_tokens=max_new_tokens,
        eos_token_ids=eos_token_ids,
        pad_id=_pad_id(tokenizer),
    )


@torch.inference_mode()
def reference_mixed_rollout(
    model: Any,
    tokenizer: Any,
    naive_prompt: Prompt,
    expert_prompt: Prompt,
    mask: Sequence[int],
    *,
    max_new_tokens: int,
    eos_token_ids: Sequence[int],
) -> list[int]:
    """The greedy method for one row, no cache: recompute both full sequences at every step."""
    expert, naive = _token_ids(tokenizer, expert_prompt), _token_ids(tokenizer, naive_prompt)
    generated: list[int] = []
    for step in range(max_new_tokens):
        prefix = naive if mask[step] else expert
        ids = torch.tensor([prefix + generated], device=model.device)
        token = int(model(input_ids=ids).logits[0, -1].argmax())
        generated.append(token)
        if token in eos_token_ids:
            break
    return generated


def sample_rollout(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    *,
    n: int,
    max_new_tokens: int,
    eos_token_ids: Sequence[int],
    seed: int,
    example_ids: Sequence[str],
    temperature: float = 1.0,
    top_p: float = 1.0,
) -> list[list[list[int]]]:
    """``n`` sampled continuations per prompt (on-policy baselines): ``[prompt][sample] -> ids``.

    Sample k of example e draws from its own stream seeded by (seed, e, k), so results do not
    depend on batch composition. ``temperature`` 0 is greedy (all n samples equal).
    """
    if len(prompts) != len(example_ids):
        raise ValueError("prompts and example_ids must have the same length")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    _check_sampling(temperature, top_p)
    ids = [_token_ids(tokenizer, p) for p in prompts]
    rows = [(i, k) for i in range(len(ids)) for k in range(n)]
    rngs = [random.Random(stable_seed("sample", seed, example_ids[i], k)) for i, k in rows]
    device = model.device

    def choose(step: int, active: torch.Tensor, logits: list[torch.Tensor]) -> torch.Tensor:
        if temperature == 0:
            return logits[0].argmax(-1)
        uniforms = torch.tensor([rngs[r].random() for r in active.tolist()], device=device)
        return _sample(logits[0], uniforms, temperature, top_p)

    flat = _lockstep_decode(
        model,
        [[ids[i] for i, _ in rows]],
        choose,
        max_new_tokens=max_new_tokens,
        eos_token_ids=eos_token_ids,
        pad_id=_pad_id(tokenizer),
    )
    return [flat[i * n : (i + 1) * n] for i in range(len(ids))]
