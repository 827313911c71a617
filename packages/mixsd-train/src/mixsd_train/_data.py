"""From JSONL files to padded training batches.

Every example is tokenised exactly as the model sees it at evaluation time: the user turn
rendered by the chat template with ``add_generation_prompt=True`` (``mixsd_core.render_naive_prompt``),
tokenised without extra special tokens (the template already holds them), then the target text
and one EOS token (where generation stops). Prompt and target are tokenised separately, so the
boundary is the one greedy decoding starts from. The loss covers the target tokens only.

Pad == EOS for the default model, so labels never come from token ids: the collator builds them
from the attention mask (real tokens) and the prompt length of each row (assistant span).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

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
    """A cheap check before any model is loaded: the file was written by ``mixsd rollout``."""
    fields = ("naive_prompt", "expert_prompt", "target_ids", "verified")
    missing = [k for k in fields if k not in records[0]]
    if missing:
        raise TrainError(f"not a rollout file (records lack {', '.join(missing)})", path=path)


def read_rollouts_file(path: str | Path, tokenizer: Any) -> list[dict[str, Any]]:
    """The verified records of a rollout file, checked against ``tokenizer``.

    A rollout made with another model's tokenizer or chat template would train on prompts the
    model never sees at evaluation time: its stored naive prompt must match what this tokenizer
    renders, and its stored target ids must decode to its target text.
    """
    from mixsd_core import render_naive_prompt

    records = read_records_file(path)
    require_rollout_fields(records, path)
    kept = [r for r in records if r.get("verified") is True]
    if not kept:
        raise TrainError(
            f"no verified records (all {len(records)} failed or unverified)", path=path
        )
    eos = set(_eos_ids(tokenizer))
    for line, record in enumerate(kept, start=1):
        naive = render_naive_prompt(tokenizer, record)
        ids = list(record["target_ids"])
        text = tokenizer.decode(ids[:-1] if ids and ids[-1] in eos else ids)
        if record["naive_prompt"] != naive or text != record["target"]:
            raise TrainError(
                f"record {record['id']!r} (verified #{line}) was made with another "
                "tokenizer or chat template than this model's; redo the rollout with this model",
                path=path,
            )
    return kept


def _eos_ids(tokenizer: Any) -> list[int]:
    if tokenizer.eos_token_id is None:
        raise TrainError("the tokenizer has no EOS token: cannot mark where a target ends")
    return [int(tokenizer.eos_token_id)]


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_pair(
    tokenizer: Any,
    prompt: str,
    target: str,
    max_length: int,
    *,
    prompt_len_limit: int | None = None,
) -> tuple[list[int], int]:
    """``(prompt ids + target ids + EOS, prompt length)``; the target is cut to fit ``max_length``.

    ``prompt`` is an already rendered chat prompt. ``prompt_len_limit`` reserves room for a
    longer prompt elsewhere (the teacher's), so both sides keep the same number of target tokens.
    """
    prompt_ids = _ids(tokenizer, prompt)
    target_ids = [*_ids(tokenizer, target), _eos_ids(tokenizer)[0]]
    room = max_length - max(len(prompt_ids), prompt_len_limit or 0)
    if room < 1:
        raise TrainError(
            f"a prompt of {len(prompt_ids)} tokens leaves no room in max_length={max_length}"
        )
    return prompt_ids + target_ids[:room], len(prompt_ids)


class ExampleDataset(torch.utils.data.Dataset):
    """A list of already tokenised examples (dicts of lists and strings)."""

    def __init__(self, examples: Sequence[dict[str, Any]]) -> None:
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.examples[index]


def nll_examples(
    records: Sequence[Mapping[str, Any]], tokenizer: Any, max_length: int
) -> ExampleDataset:
    """sft / mixsd: naive prompt + the record's ``target`` (canonical, or the mixed one)."""
    from mixsd_core import render_naive_prompt

    out = []
    for r in records:
        naive = render_naive_prompt(tokenizer, r)
        ids, prompt_len = encode_pair(tokenizer, naive, str(r["target"]), max_length)
        out.append({"id": r["id"], "input_ids": ids, "prompt_len": prompt_len})
    return ExampleDataset(out)


def kl_examples(
    records: Sequence[Mapping[str, Any]], tokenizer: Any, max_length: int
) -> ExampleDataset:
    """mixsd-kl: student = naive prompt + target, teacher = the rollout's expert prompt + target.

    Both rows carry the very same target ids, so teacher and student positions align one to one
    on the target span (the collator's labels select the same count of tokens in each row).
    """
    out = []
    for r in records:
        expert = _ids(tokenizer, r["expert_prompt"])
        ids, plen = encode_pair(
            tokenizer, r["naive_prompt"], r["target"], max_length, prompt_len_limit=len(expert)
        )
        teacher = expert + ids[plen:]
        out.append(
            {
                "id": r["id"],
                "input_ids": ids,
                "prompt_len": plen,
                "teacher_input_ids": teacher,
                "teacher_prompt_len": len(expert),
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
