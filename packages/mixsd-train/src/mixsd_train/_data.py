"""From JSONL files to padded training batches.

Every example is tokenised exactly as the model sees it at evaluation time: the user turn
rendered by the chat template with ``add_generation_prompt=True`` (``mixsd_core.render_naive_prompt``),
tokenised without extra special tokens (the template already holds them), then the target tokens
and one EOS token (where generation stops). Prompt and target are tokenised separately, so the
boundary is the one greedy decoding starts from. The loss covers the target tokens only.

Target tokens: a rollout record's ``target_ids`` are the tokens the mixed rollout generated, and
MixSD trains on exactly those (its generated end token is replaced by the one EOS every example
ends with). Re-tokenising the decoded text is not the same: a generated sequence need not be the
tokenizer's own split of its text (the rollout may emit "a", "b" where the tokenizer merges
"ab"). A record without ``target_ids`` (SFT records, an older or hand-written rollout file) falls
back to tokenising its ``target`` text; each example says which it used (``target_source``) and
the run's manifest counts them.

Pad == EOS for the default model, so labels never come from token ids: the collator builds them
from the attention mask (real tokens) and the prompt length of each row (assistant span).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mixsd_base import DataError, iter_jsonl
from mixsd_train._errors import TrainError

__all__ = [
    "ExampleDataset",
    "PadCollator",
    "encode_pair",
    "kl_examples",
    "nll_examples",
    "pad_rows",
    "prompt_examples",
    "read_records_file",
    "read_rollouts_file",
    "require_rollout_fields",
    "stored_target_ids",
    "target_sources",
]

IGNORE_INDEX = -100


def read_records_file(path: str | Path, *, need_answer: bool = True) -> list[dict[str, Any]]:
    """Records of a JSONL file (sft, opsd, validation): ``mixsd_core.read_records``, whose
    errors (a bad line or field, an empty file) name the file, line and field."""
    from mixsd_core import read_records

    return read_records(path, need_answer=need_answer)


def _prompt_config(style: str) -> Any:
    from mixsd_core import PromptConfig

    return PromptConfig(style=style)


def require_rollout_fields(records: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """A cheap check before any model is loaded: the file was written by ``mixsd rollout``.

    ``target_ids`` is not required: a rollout file without it trains on its re-tokenised text.
    """
    fields = ("naive_prompt", "expert_prompt", "verified")
    missing = [k for k in fields if k not in records[0]]
    if missing:
        raise TrainError(f"not a rollout file (records lack {', '.join(missing)})", path=path)


def stored_target_ids(
    record: Mapping[str, Any],
    tokenizer: Any,
    *,
    path: str | Path | None = None,
    line: int | None = None,
) -> list[int] | None:
    """The generated target tokens of a rollout record without their end token, or ``None``
    when the record stores none (then its ``target`` text is what trains).

    The end token is the last id when the rollout stopped there (``finish_reason`` "eos", or,
    in a record without it, a last id equal to the tokenizer's EOS). ``target_ids`` that are not
    a list of token ids of this tokenizer are one :class:`DataError` naming ``path``, ``line``
    and the field.
    """
    ids = record.get("target_ids")
    if ids is None:
        return None
    vocab_size = len(tokenizer)
    if not isinstance(ids, list) or not all(type(i) is int and 0 <= i < vocab_size for i in ids):
        raise DataError(
            f"must be a list of token ids in [0, {vocab_size}) (record {record.get('id')!r})",
            path=path,
            line=line,
            field="target_ids",
        )
    ended = bool(ids) and (record.get("finish_reason") == "eos" or ids[-1] in _eos_ids(tokenizer))
    return ids[:-1] if ended else list(ids)


def read_rollouts_file(path: str | Path, tokenizer: Any) -> list[dict[str, Any]]:
    """The verified records of a rollout file, checked against ``tokenizer``.

    A rollout made with another model's tokenizer or chat template would train on prompts the
    model never sees at evaluation time: its stored naive prompt must match what this tokenizer
    renders, and its stored target ids (where it has them) must be ids of this tokenizer that
    decode to its target text.
    """
    from mixsd_core import render_naive_prompt

    records = read_records_file(path)
    require_rollout_fields(records, path)
    # read_records keeps every non-blank line in order: the file line of each record.
    lines = [number for number, _ in iter_jsonl(path, what="data file")]
    kept = [(n, r) for n, r in zip(lines, records, strict=True) if r.get("verified") is True]
    if not kept:
        raise TrainError(
            f"no verified records (all {len(records)} failed or unverified)", path=path
        )
    for line, record in kept:
        naive = render_naive_prompt(tokenizer, record)
        ids = stored_target_ids(record, tokenizer, path=path, line=line)
        if record["naive_prompt"] != naive or (
            ids is not None and tokenizer.decode(ids) != record["target"]
        ):
            raise TrainError(
                f"record {record['id']!r} was made with another tokenizer or chat template "
                "than this model's; redo the rollout with this model",
                path=path,
                line=line,
            )
    return [record for _, record in kept]


def _eos_ids(tokenizer: Any) -> list[int]:
    if tokenizer.eos_token_id is None:
        raise TrainError("the tokenizer has no EOS token: cannot mark where a target ends")
    return [int(tokenizer.eos_token_id)]


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_pair(
    tokenizer: Any,
    prompt: str,
    target: str | Sequence[int],
    max_length: int,
    *,
    prompt_len_limit: int | None = None,
) -> tuple[list[int], int]:
    """``(prompt ids + target ids + EOS, prompt length)``; the target is cut to fit ``max_length``.

    ``prompt`` is an already rendered chat prompt. ``target`` is a text (tokenised here) or the
    target's token ids, used as they are (the generated ones, without their end token).
    ``prompt_len_limit`` reserves room for a longer prompt elsewhere (the teacher's), so both
    sides keep the same number of target tokens.
    """
    prompt_ids = _ids(tokenizer, prompt)
    body = _ids(tokenizer, target) if isinstance(target, str) else list(target)
    target_ids = [*body, _eos_ids(tokenizer)[0]]
    room = max_length - max(len(prompt_ids), prompt_len_limit or 0)
    if room < 1:
        raise TrainError(
            f"a prompt of {len(prompt_ids)} tokens leaves no room in max_length={max_length}"
        )
    return prompt_ids + target_ids[:room], len(prompt_ids)


def _target(record: Mapping[str, Any], tokenizer: Any) -> tuple[str | list[int], str]:
    """``(what encode_pair gets as the target, its source)``: the stored ids, else the text."""
    ids = stored_target_ids(record, tokenizer)
    return (str(record["target"]), "text") if ids is None else (ids, "target_ids")


class ExampleDataset(torch.utils.data.Dataset):
    """A list of already tokenised examples (dicts of lists and strings)."""

    def __init__(self, examples: Sequence[dict[str, Any]]) -> None:
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.examples[index]


def target_sources(dataset: ExampleDataset) -> dict[str, int]:
    """How many examples train on stored ``target_ids`` and how many on re-tokenised text."""
    sources = [e.get("target_source") for e in dataset.examples]
    return {source: sources.count(source) for source in ("target_ids", "text")}


def nll_examples(
    records: Sequence[Mapping[str, Any]], tokenizer: Any, max_length: int
) -> ExampleDataset:
    """sft / mixsd: naive prompt + the record's target (the canonical text, or the mixed
    rollout's stored ids)."""
    from mixsd_core import render_naive_prompt

    out = []
    for r in records:
        naive = render_naive_prompt(tokenizer, r)
        target, source = _target(r, tokenizer)
        ids, prompt_len = encode_pair(tokenizer, naive, target, max_length)
        out.append(
            {"id": r["id"], "input_ids": ids, "prompt_len": prompt_len, "target_source": source}
        )
    return ExampleDataset(out)


def kl_examples(
    records: Sequence[Mapping[str, Any]], tokenizer: Any, max_length: int
) -> ExampleDataset:
    """mixsd-kl: student = naive prompt + target, teacher = the rollout's expert prompt + target.

    Both rows carry the very same target ids (the stored ones, else the text's), so teacher and
    student positions align one to one on the target span (the collator's labels select the same count of tokens in each row).
    """
    out = []
    for r in records:
        expert = _ids(tokenizer, r["expert_prompt"])
        target, source = _target(r, tokenizer)
        ids, plen = encode_pair(
            tokenizer, r["naive_prompt"], target, max_length, prompt_len_limit=len(expert)
        )
        teacher = expert + ids[plen:]
        out.append(
            {
                "id": r["id"],
                "input_ids": ids,
                "prompt_len": plen,
                "teacher_input_ids": teacher,
                "teacher_prompt_len": len(expert),
                "target_source": source,
            }
        )
    return ExampleDataset(out)


def prompt_examples(
    records: Sequence[Mapping[str, Any]], tokenizer: Any, prompt_style: str
) -> ExampleDataset:
    """opsd / opsd-nll: naive and expert prompt ids; the targets are sampled during training."""
    from mixsd_core import render_prompts

    config = _prompt_config(prompt_style)
    out = []
    for r in records:
        naive, expert = render_prompts(tokenizer, r, config)
        out.append(
            {
                "id": r["id"],
                "naive_ids": _ids(tokenizer, naive),
                "expert_ids": _ids(tokenizer, expert),
            }
        )
    return ExampleDataset(out)


def pad_rows(
    rows: Sequence[Sequence[int]], prompt_lens: Sequence[int], pad_id: int
) -> dict[str, torch.Tensor]:
    """Right-pad rows; labels = ids on real (attention 1) positions past the prompt, else -100."""
    from mixsd_core import pad_right

    ids, attention = pad_right(rows, pad_id)
    positions = torch.arange(ids.shape[1])[None, :]
    in_target = (attention == 1) & (positions >= torch.tensor(list(prompt_lens))[:, None])
    return {
        "input_ids": ids,
        "attention_mask": attention,
        "labels": ids.masked_fill(~in_target, IGNORE_INDEX),
    }


@dataclass
class PadCollator:
    """Batches examples of any of the three kinds above (right padding, training side)."""

    pad_id: int

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        first = examples[0]
        if "naive_ids" in first:  # on-policy: lists only, the trainer pads after sampling
            return {key: [e[key] for e in examples] for key in ("id", "naive_ids", "expert_ids")}
        batch: dict[str, Any] = pad_rows(
            [e["input_ids"] for e in examples], [e["prompt_len"] for e in examples], self.pad_id
        )
        if "teacher_input_ids" in first:
            teacher = pad_rows(
                [e["teacher_input_ids"] for e in examples],
                [e["teacher_prompt_len"] for e in examples],
                self.pad_id,
            )
            batch.update({f"teacher_{k}": v for k, v in teacher.items()})
        return batch
