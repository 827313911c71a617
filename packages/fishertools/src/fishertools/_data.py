"""Prompt/response JSONL -> token ids plus a mask of the response tokens the NLL is taken over.

The chat template renders ``prompt`` as the user turn and ``response`` as the assistant turn.
The loss mask comes from character offsets of the assistant span in the rendered text, never
from the pad id: in the default model pad == eos, and the closing eos of the response is a
token the model must predict.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fishertools._config import FisherError

__all__ = ["EncodedSample", "encode_records", "file_sha256", "pad_batch", "read_records"]


@dataclass(frozen=True)
class EncodedSample:
    """One rendered conversation: ``input_ids`` (T,) and ``loss_mask`` (T,), 1 on response tokens."""

    input_ids: torch.Tensor
    loss_mask: torch.Tensor
    line: int  # 1-based line of the record in its file, for error messages


def read_records(path: Path, limit: int | None = None) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) for the first ``limit`` non-blank lines; every field checked."""
    path = Path(path)
    if not path.is_file():
        raise FisherError(f"data file not found: {path.absolute()}")
    records: list[tuple[int, dict[str, Any]]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if limit is not None and len(records) >= limit:
                break
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FisherError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise FisherError(f"{where}: expected a JSON object")
            for key in ("prompt", "response"):
                if key not in record:
                    raise FisherError(f"{where}: missing field '{key}'")
                if not isinstance(record[key], str) or not record[key].strip():
                    raise FisherError(f"{where}: field '{key}' must be a non-empty string")
            records.append((number, record))
    if not records:
        raise FisherError(f"{path}: no records")
    return records


def _render(tokenizer: Any, messages: list[dict[str, str]], *, generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt
    )


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
        prefix = _render(tokenizer, user, generation_prompt=True)
        full = _render(
            tokenizer,
            [*user, {"role": "assistant", "content": record["response"]}],
            generation_prompt=False,
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
                f"{source}:{number}: field 'response': no response tokens within max_length={max_length}"
            )
        samples.append(EncodedSample(ids, mask, number))
    return samples


def pad_batch(samples: list[EncodedSample]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sample: (ids, mask), both (B, T); pads have mask 0.

    Right padding needs no attention mask for a causal model: real tokens only attend to earlier
    positions, so pads (always later) cannot change them, and the mask drops pads from the loss.
    The pad id is irrelevant for the same reason (0 is used).
    """
    length = max(len(s.input_ids) for s in samples)
    ids = torch.zeros(len(samples), length, dtype=torch.long)
    mask = torch.zeros(len(samples), length)
    for row, sample in enumerate(samples):
        ids[row, : len(sample.input_ids)] = sample.input_ids
        mask[row, : len(sample.loss_mask)] = sample.loss_mask
    return ids, mask


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
