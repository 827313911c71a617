"""Tokens in and out of a causal LM, written once for every package: chat rendering, padding and
the NLL of a response given its prompt.

* ``render_chat`` is the only chat renderer: it always passes ``enable_thinking=False``, which turns
  thinking off for hybrid templates (Qwen3-style) and is ignored by every other template. Training,
  rollouts, evaluation and the Fisher data therefore tokenise the same conversation the same way.
* ``pad_right`` keeps every real token at its own index (teacher forcing, scoring); ``pad_left``
  puts every row's last token in the last column (batched decoding, scoring a suffix).
* ``response_nll_tensors`` scores responses: ``-log p(token | prompt, earlier response tokens)`` for every
  response token, log-softmax in fp32. Which positions are scored comes from the row lengths, never
  from the pad id: for SmolLM2 pad == EOS, and a closing EOS is a real token to score.

torch is imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

__all__ = [
    "pad_left",
    "pad_right",
    "pad_token_id",
    "render_chat",
    "render_user_prompt",
    "response_nll_tensors",
    "token_nll",
]


def render_chat(
    tokenizer: Any,
    messages: Sequence[Mapping[str, str]],
    *,
    add_generation_prompt: bool = True,
) -> str:
    """``messages`` (``{"role", "content"}`` dicts) through the tokenizer's chat template, as text.

    Thinking is always off (``enable_thinking=False``): hybrid templates such as Qwen3's would
    otherwise open a ``<think>`` block the training data never contains.
    """
    return tokenizer.apply_chat_template(
        [dict(m) for m in messages],
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
        enable_thinking=False,
    )


def render_user_prompt(tokenizer: Any, user_message: str) -> str:
    """One user turn, no system prompt, ready for the assistant's reply."""
    return render_chat(tokenizer, [{"role": "user", "content": user_message}])


def pad_token_id(tokenizer: Any) -> int:
    """The id to pad batches with: the pad token, else EOS (else 0).

    Any id works, since padded positions are masked out of attention and never scored; it only
    has to be a valid embedding row. For SmolLM2-style tokenizers pad == EOS.
    """
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad) if pad is not None else 0


def _pad(
    rows: Sequence[Sequence[int]], pad_id: int, device: Any, *, left: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, span] = torch.tensor(list(row), dtype=torch.long)
        mask[i, span] = 1
    return ids.to(device), mask.to(device)


def pad_right(
    rows: Sequence[Sequence[int]], pad_id: int, device: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)``, both (B, T) long; right padding keeps every real token at
    its index, so positions read from the unpadded rows stay valid."""
    return _pad(rows, pad_id, device, left=False)


def pad_left(
    rows: Sequence[Sequence[int]], pad_id: int, device: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)``, both (B, T) long; left padding puts every row's last token
    in the last column (where batched decoding reads the next-token logits)."""
    return _pad(rows, pad_id, device, left=True)


def token_nll(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """NLL of tokens 1..T-1 of each sequence: logits (..., T, V), ids (..., T) -> (..., T-1), fp32.

    Position t-1 predicts token t. The pure tensor step under every NLL in the project (and the
    loss that per-sample gradients differentiate); log-softmax runs in fp32 whatever the model's
    dtype.
    """
    import torch

    logprobs = torch.log_softmax(logits[..., :-1, :].float(), dim=-1)
    return -logprobs.gather(-1, input_ids[..., 1:, None]).squeeze(-1)


def response_nll_tensors(
    model: Any,
    prompt_rows: Sequence[Sequence[int]],
    response_rows: Sequence[Sequence[int]],
    *,
    batch_size: int = 8,
    padding: Literal["left", "right"] = "right",
    pad_id: int = 0,
) -> list[torch.Tensor]:
    """Per response, the fp32 NLL of each of its tokens given the prompt and the earlier response
    tokens, as a 1-D tensor on the model's device (no grad); ``.tolist()`` gives the floats.

    Rows are ``prompt + response``, batched ``batch_size`` at a time in the given order.
    ``padding="right"``: one forward pass over the padded batch with its attention mask.
    ``padding="left"``: position ids count real tokens only and only the logits of the last
    ``max(len(response)) + 1`` columns are computed (``logits_to_keep``), cheaper when prompts
    are long. The two agree to float rounding; each caller keeps the one its numbers were made
    with. ``pad_id`` never changes a score (padded positions are masked), only the embedding row
    the padded slots read.
    """
    import torch

    if len(prompt_rows) != len(response_rows):
        raise ValueError(f"{len(prompt_rows)} prompts but {len(response_rows)} responses")
    if padding not in ("left", "right"):
        raise ValueError(f"padding must be 'left' or 'right', got {padding!r}")
    for prompt, response in zip(prompt_rows, response_rows, strict=True):
        if not prompt or not response:
            # The first token of a row has no prediction: a response needs a prompt before it.
            raise ValueError("every prompt and every response needs at least one token")
    device = next(model.parameters()).device
    out: list[torch.Tensor] = []
    # The fp32 log-softmax is taken one row at a time (the same numbers: each position's is its
    # own): over a whole batch it needs two fp32 copies of every logit, 16 rows x 300 tokens x a
    # 152k vocabulary = 2 x 2.9 GB, which made evaluation the claims run's memory peak.
    with torch.inference_mode():
        for start in range(0, len(prompt_rows), batch_size):
            prompts = prompt_rows[start : start + batch_size]
            responses = response_rows[start : start + batch_size]
            rows = [[*p, *r] for p, r in zip(prompts, responses, strict=True)]
            if padding == "right":
                ids, attention = pad_right(rows, pad_id)
                ids = ids.to(device)
                logits = model(
                    input_ids=ids, attention_mask=attention.to(device), use_cache=False
                ).logits
                for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
                    nll = token_nll(logits[i], ids[i])
                    out.append(nll[len(p) - 1 : len(p) - 1 + len(r)])  # token t at t - 1
            else:
                ids, attention = pad_left(rows, pad_id)
                width = ids.shape[1]
                keep = max(len(r) for r in responses) + 1  # logits of the last keep columns
                positions = (attention.cumsum(-1) - 1).clamp(min=0)
                logits = model(
                    input_ids=ids.to(device),
                    attention_mask=attention.to(device),
                    position_ids=positions.to(device),
                    use_cache=False,
                    logits_to_keep=keep,
                ).logits
                # logits[:, j] predicts the token at column width - keep + j + 1.
                kept_ids = ids[:, width - keep :].to(device)
                for i, r in enumerate(responses):  # every response ends in the last column
                    nll = token_nll(logits[i], kept_ids[i])
                    out.append(nll[nll.shape[0] - len(r) :])
    return out
