"""Sampled decoding (temperature, top-p) on the lockstep decoder of ``_rollout``.

Not the method (MixSD's targets are greedy): the on-policy baselines sample the student
(``sample_rollout``, OPSD), and the rollout stage can sample the chosen stream of a mixed rollout
(``sampled_mixed_rollout``, ``temperature > 0``). Every row draws from its own random stream
seeded by the caller, so a row's tokens never depend on which rows share its batch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch

from mixsd_core._masks import stable_seed
from mixsd_core._rollout import Prompt, _token_ids, lockstep_decode, mixed_rollout
from mixsd_core._tokens import pad_token_id

__all__ = ["check_sampling", "sample_rollout", "sample_tokens", "sampled_mixed_rollout"]


def check_sampling(temperature: float, top_p: float) -> None:
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def sample_tokens(
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


def sampled_mixed_rollout(
    model: Any,
    tokenizer: Any,
    naive_prompts: Sequence[Prompt],
    expert_prompts: Sequence[Prompt],
    masks: Sequence[Sequence[int]],
    *,
    temperature: float,
    seeds: Sequence[int],
    max_new_tokens: int,
    eos_token_ids: Sequence[int],
    top_p: float = 1.0,
) -> list[list[int]]:
    """``mixed_rollout`` with the chosen stream's token sampled instead of taken greedily.

    Row i samples from its own stream seeded by ``seeds[i]``. ``temperature`` must be > 0: the
    greedy method is ``mixed_rollout``.
    """
    check_sampling(temperature, top_p)
    if temperature == 0:
        raise ValueError("temperature 0 is greedy decoding: use mixed_rollout")
    if len(seeds) != len(masks):
        raise ValueError("sampling needs one seed per row")
    rngs = [random.Random(stable_seed("sample", s)) for s in seeds]

    def sample(active: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        uniforms = torch.tensor([rngs[r].random() for r in active.tolist()], device=model.device)
        return sample_tokens(logits, uniforms, temperature, top_p)

    return mixed_rollout(
        model,
        tokenizer,
        naive_prompts,
        expert_prompts,
        masks,
        max_new_tokens=max_new_tokens,
        eos_token_ids=eos_token_ids,
        pick_token=sample,
    )


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
    depend on batch composition. ``temperature`` 0 takes the argmax (all n samples equal); for
    plain greedy decoding call ``greedy_generate``.
    """
    if len(prompts) != len(example_ids):
        raise ValueError("prompts and example_ids must have the same length")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    check_sampling(temperature, top_p)
    ids = [_token_ids(tokenizer, p) for p in prompts]
    rows = [(i, k) for i in range(len(ids)) for k in range(n)]
    rngs = [random.Random(stable_seed("sample", seed, example_ids[i], k)) for i, k in rows]
    device = model.device

    def choose(step: int, active: torch.Tensor, logits: list[torch.Tensor]) -> torch.Tensor:
        if temperature == 0:
            return logits[0].argmax(-1)
        uniforms = torch.tensor([rngs[r].random() for r in active.tolist()], device=device)
        return sample_tokens(logits[0], uniforms, temperature, top_p)

    flat = lockstep_decode(
        model,
        [[ids[i] for i, _ in rows]],
        choose,
        max_new_tokens=max_new_tokens,
        eos_token_ids=eos_token_ids,
        pad_id=pad_token_id(tokenizer),
    )
    return [flat[i * n : (i + 1) * n] for i in range(len(ids))]
