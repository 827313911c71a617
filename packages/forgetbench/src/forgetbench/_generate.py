"""Batched greedy generation and response NLL, for the in-domain and reference-loss suites.

Generation goes through mixsd-core's cached batched decoder (``sample_rollout`` at temperature 0
is plain greedy decoding with left padding; finished rows leave the batch), so in-domain outputs
match the rollouts the trainers see token for token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["greedy_generate", "render_user", "response_nll"]


def render_user(tokenizer: Any, text: str) -> str:
    """One user turn through the chat template, ready for the assistant's reply."""
    # enable_thinking=False matters for Qwen3-style templates and is ignored by the others.
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": text}],
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=False,
    )


def greedy_generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    batch_size: int = 8,
) -> list[list[int]]:
    """Greedy continuations (token ids, EOS included when reached) of rendered prompts."""
    import torch

    from mixsd_core import sample_rollout, stop_token_ids

    eos = stop_token_ids(model, tokenizer)
    # Longest first: rows of similar length share a batch, so less padding is computed.
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    out: list[list[int]] = [[] for _ in prompts]
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            samples = sample_rollout(
                model,
                tokenizer,
                [prompts[i] for i in chunk],
                n=1,
                max_new_tokens=max_new_tokens,
                eos_token_ids=eos,
                seed=0,
                example_ids=[str(i) for i in chunk],
                temperature=0.0,
            )
            for i, rows in zip(chunk, samples, strict=True):
                out[i] = rows[0]
    return out


def response_nll(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[Sequence[int]],
    *,
    batch_size: int = 8,
) -> list[tuple[float, int]]:
    """``(summed NLL, token count)`` of each response's tokens given its rendered prompt."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    results: list[tuple[float, int]] = []
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            seqs, spans = [], []
            for prompt, response in zip(
                prompts[start : start + batch_size],
                responses[start : start + batch_size],
                strict=True,
            ):
                ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
                seqs.append(ids + list(response))
                spans.append((len(ids), len(ids) + len(response)))
            width = max(len(s) for s in seqs)
            # Right padding; padded positions are masked by attention, never by the pad id
            # (pad == EOS for SmolLM2, and EOS is a real response token).
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            attention = torch.zeros((len(seqs), width), dtype=torch.long)
            for i, s in enumerate(seqs):
                ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
                attention[i, : len(s)] = 1
            logits = model(
                input_ids=ids.to(model.device), attention_mask=attention.to(model.device)
            ).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
            token_lp = logprobs.gather(-1, ids[:, 1:, None].to(model.device)).squeeze(-1)
            for i, (begin, end) in enumerate(spans):
                # Token t is predicted at position t - 1.
                lp = token_lp[i, begin - 1 : end - 1]
                results.append((float(-lp.sum()), end - begin))
    return results
