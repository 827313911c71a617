"""Prompt/response JSONL -> token ids plus a mask of the response tokens the NLL is taken over.

The chat template renders ``prompt`` as the user turn and ``response`` as the assistant turn,
through mixsd_core's one chat renderer (thinking off, as in training and evaluation).
The loss mask comes from character offsets of the assistant span in the rendered text, never
from the pad id: in the default model pad == eos, and the closing eos of the response is a
token the model must predict.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fishertools._config import FisherError
from mixsd_base import iter_jsonl
from mixsd_core import render_chat

__all__ = ["EncodedSample", "encode_records", "read_records"]


@dataclass(frozen=True)
class EncodedSample:
    """One rendered conversation: ``input_ids`` (T,) and ``loss_mask`` (T,), 1 on response tokens."""

    input_ids: torch.Tensor
    loss_mask: torch.Tensor
    line: int  # 1-based line of the record in its file, for error messages


def read_records(path: Path, limit: int | None = None) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) for the first ``limit`` non-blank lines; every field checked."""
    records: list[tuple[int, dict[str, Any]]] = []
    lines = iter_jsonl(
        path,
        required=("prompt", "response"),
        types={"prompt": str, "response": str},
        what="data file",
    )
    for number, record in lines:
        if limit is not None and len(records) >= limit:
            break
        for key in ("prompt", "response"):
            if not record[key].strip():
                raise FisherError("must be a non-empty string", path=path, line=number, field=key)
        records.append((number, record))
    if not records:
        raise FisherError("no records", path=path)
    return records


def encode_records(
    records: list[tuple[int, dict[str, Any]]],
    tokenizer: Any,
    *,
    max_length: int,
    source: str = "data",
) -> list[EncodedSample]:
    """Render and tokenize each record; the mask covers the response and its closing eos."""
    if not getattr(tokenizer, "chat_template", None):
        raise FisherError("the tokenizer has no chat template (needed to render prompt/response)")
    if not getattr(tokenizer, "is_fast", False):
        raise FisherError("a fast tokenizer is needed (the response span uses offset mappings)")
    eos = tokenizer.eos_token or ""
    samples = []
    for number, record in records:
        user = [{"role": "user", "content": record["prompt"]}]
        prefix = render_chat(tokenizer, user, add_generation_prompt=True)
        full = render_chat(
            tokenizer,
            [*user, {"role": "assistant", "content": record["response"]}],
            add_generation_prompt=False,
        )
        if not full.startswith(prefix):
            raise FisherError(
                "the chat template does not render the prompt as a prefix of the conversation; "
                "cannot locate the response span"
            )
        start = len(prefix)
        # The assistant turn ends at its eos (the last one: a single-turn chat has no later turn);
        # text after it (a trailing newline) is never generated, so it is not part of the loss.
        stop = full.rfind(eos) if eos else -1
        end = stop + len(eos) if stop >= start else len(full.rstrip())
        enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        ids = torch.tensor(enc["input_ids"][:max_length], dtype=torch.long)
        offsets = enc["offset_mapping"][:max_length]
        mask = torch.tensor([float(start <= s < end) for s, _ in offsets])
        if mask.sum() == 0:
            raise FisherError(
                f"no response tokens within max_length={max_length}",
                path=source,
                line=number,
                field="response",
            )
        samples.append(EncodedSample(ids, mask, number))
    return samples
