"""Tokenisation as at evaluation time, label masks (pad == EOS), record and rollout readers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from mixsd_base import DataError
from mixsd_core import render_user_prompt
from mixsd_train import TrainError, encode_pair, read_records_file, read_rollouts_file
from mixsd_train._data import (
    IGNORE_INDEX,
    PadCollator,
    kl_examples,
    nll_examples,
    pad_rows,
    prompt_examples,
)


def test_encode_pair_is_the_generation_prompt_then_target_and_eos(tiny_tokenizer: Any) -> None:
    tok = tiny_tokenizer
    prompt = render_user_prompt(tok, "Who employs Zorvath Kellen?")
    assert prompt.endswith("<|im_start|>assistant\n")
    ids, prompt_len = encode_pair(tok, prompt, "Ormavel Dynamics.", max_length=512)
    assert ids[:prompt_len] == tok(prompt, add_special_tokens=False)["input_ids"]
    assert ids[-1] == tok.eos_token_id
    assert tok.decode(ids[prompt_len:]) == "Ormavel Dynamics.<|im_end|>"
    # the target is cut on the right to fit max_length
    short, plen = encode_pair(tok, prompt, "Ormavel Dynamics.", max_length=prompt_len + 2)
    assert len(short) == prompt_len + 2 and plen == prompt_len
    with pytest.raises(TrainError, match="no room"):
        encode_pair(tok, prompt, "x", max_length=prompt_len)


def test_labels_cover_the_target_only_and_keep_eos_equal_to_pad(tiny_tokenizer: Any) -> None:
    eos = tiny_tokenizer.eos_token_id
    assert tiny_tokenizer.pad_token_id == eos  # the case that forbids masks from pad ids
    rows = [[5, 6, 7, 8, eos], [5, 6, 9, eos, 10, 11, eos]]
    batch = pad_rows(rows, [3, 2], pad_id=eos)
    assert batch["input_ids"].shape == (2, 7)
    assert batch["attention_mask"].tolist() == [[1] * 5 + [0, 0], [1] * 7]
    labels = batch["labels"].tolist()
    ignore = IGNORE_INDEX
    # prompt tokens and right padding are -100; the target's own EOS (== pad id) is kept
    assert labels[0] == [ignore, ignore, ignore, 8, eos, ignore, ignore]
    assert labels[1] == [ignore, ignore, 9, eos, 10, 11, eos]


def test_nll_examples_use_the_chat_template_and_context(tiny_tokenizer: Any) -> None:
    record = {"id": "kgfact-x", "prompt": "Where?", "target": "There.", "context": "A passage."}
    (example,) = nll_examples([record], tiny_tokenizer, 256).examples
    prompt = tiny_tokenizer.decode(example["input_ids"][: example["prompt_len"]])
    assert prompt == render_user_prompt(tiny_tokenizer, "A passage.\n\nWhere?")
    batch = PadCollator(tiny_tokenizer.eos_token_id)([example])
    kept = batch["labels"][0][batch["labels"][0] != IGNORE_INDEX]
    assert tiny_tokenizer.decode(kept) == "There.<|im_end|>"


def test_read_records_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="no records"):
        read_records_file(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": "z", "prompt": "p", "target": "t", "answer": "a"}\n\n{"id": "a", "prompt": "p"}\n'
    )
    with pytest.raises(DataError, match=r"bad.jsonl:3: field 'target': missing field"):
        read_records_file(bad)
    with pytest.raises(DataError, match="no such data file"):
        read_records_file(tmp_path / "missing.jsonl")


def test_read_rollouts_keeps_verified_and_checks_the_tokenizer(
    rollout_file: Path,
    records_file: Path,
    tiny_tokenizer: Any,
    write_jsonl: Any,
    tmp_path: Path,
) -> None:
    lines = [json.loads(line) for line in rollout_file.read_text().splitlines()]
    kept = read_rollouts_file(rollout_file, tiny_tokenizer)
    assert 0 < len(kept) == sum(r["verified"] is True for r in lines)
    with pytest.raises(TrainError, match=rf"{records_file}: not a rollout file"):
        read_rollouts_file(records_file, tiny_tokenizer)
    # a rollout rendered with another chat template is refused
    lines[0]["naive_prompt"] = lines[0]["naive_prompt"].replace("<|im_start|>", "<s>")
    for line in lines:
        line["verified"] = True
    other = write_jsonl(tmp_path / "other.jsonl", lines)
    with pytest.raises(TrainError, match="another tokenizer or chat template"):
        read_rollouts_file(other, tiny_tokenizer)


def test_kl_examples_align_teacher_and_student_on_the_target(
    rollout_file: Path, tiny_tokenizer: Any
) -> None:
    records = read_rollouts_file(rollout_file, tiny_tokenizer)
    examples = kl_examples(records, tiny_tokenizer, 512).examples
    batch = PadCollator(tiny_tokenizer.eos_token_id)(examples)
    for i, example in enumerate(examples):
        student_target = example["input_ids"][example["prompt_len"] :]
        teacher_target = example["teacher_input_ids"][example["teacher_prompt_len"] :]
        assert student_target == teacher_target
        assert example["teacher_prompt_len"] > example["prompt_len"]  # expert holds the answer
        s = batch["labels"][i][batch["labels"][i] != IGNORE_INDEX]
        t = batch["teacher_labels"][i][batch["teacher_labels"][i] != IGNORE_INDEX]
        assert torch.equal(s, t)


def test_prompt_examples_hold_naive_and_expert_ids(tiny_tokenizer: Any) -> None:
    record = {"id": "kgfact-1", "prompt": "Who?", "target": "Him. \\boxed{Him}", "answer": "Him"}
    (example,) = prompt_examples([record], tiny_tokenizer, "clear").examples
    assert tiny_tokenizer.decode(example["naive_ids"]) == render_user_prompt(tiny_tokenizer, "Who?")
    assert "\\boxed{Him}" in tiny_tokenizer.decode(example["expert_ids"])
    batch = PadCollator(0)([example, example])
    assert batch["id"] == ["kgfact-1", "kgfact-1"] and len(batch["naive_ids"]) == 2


def split_apart(tokenizer: Any, text: str) -> list[int]:
    """Ids of ``text`` one character at a time: a valid generation whose decoded text the
    tokenizer splits otherwise (it merges some of these characters)."""
    return [i for ch in text for i in tokenizer(ch, add_special_tokens=False)["input_ids"]]


def rollout_record(tokenizer: Any, target: str, **fields: Any) -> dict[str, Any]:
    """A verified rollout record of the tiny model's chat template (prompts as rollouts render)."""
    from mixsd_core import render_naive_prompt

    record = {"id": "kgfact-r", "prompt": "Who employs Zorvath Kellen?", "answer": "Ormavel"}
    return {
        **record,
        "target": target,
        "naive_prompt": render_naive_prompt(tokenizer, record),
        "expert_prompt": render_user_prompt(tokenizer, "Who employs Zorvath Kellen? Ormavel."),
        "verified": True,
        **fields,
    }


def trained_labels(examples: list[dict[str, Any]], eos: int) -> list[list[int]]:
    batch = PadCollator(eos)(examples)
    return [row[row != IGNORE_INDEX].tolist() for row in batch["labels"]]


def test_mixsd_trains_on_the_stored_target_ids_not_the_retokenised_text(
    tiny_tokenizer: Any, write_jsonl: Any, tmp_path: Path
) -> None:
    tok, eos = tiny_tokenizer, tiny_tokenizer.eos_token_id
    text = "The answer is Ormavel Dynamics. \\boxed{Ormavel}"
    generated = split_apart(tok, text)
    retokenised = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(generated) == text and generated != retokenised  # the case at stake
    record = rollout_record(tok, text, target_ids=[*generated, eos], finish_reason="eos")
    path = write_jsonl(tmp_path / "mix.jsonl", [record])
    records = read_rollouts_file(path, tok)
    for build in (nll_examples, kl_examples):
        examples = build(records, tok, 512).examples
        assert examples[0]["target_source"] == "target_ids"
        assert trained_labels(examples, eos) == [[*generated, eos]]
    (kl,) = kl_examples(records, tok, 512).examples
    assert kl["teacher_input_ids"][kl["teacher_prompt_len"] :] == [*generated, eos]
    # a target cut at max_new_tokens (no end token generated) still ends with the one EOS
    cut = rollout_record(tok, text[:-1], target_ids=generated[:-1], finish_reason="length")
    (example,) = nll_examples([cut], tok, 512).examples
    assert trained_labels([example], eos) == [[*generated[:-1], eos]]


def test_a_rollout_without_target_ids_trains_on_its_text(
    tiny_tokenizer: Any, write_jsonl: Any, tmp_path: Path
) -> None:
    tok, eos = tiny_tokenizer, tiny_tokenizer.eos_token_id
    text = "The answer is Ormavel Dynamics. \\boxed{Ormavel}"
    path = write_jsonl(tmp_path / "old.jsonl", [rollout_record(tok, text)])
    records = read_rollouts_file(path, tok)
    for build in (nll_examples, kl_examples):
        examples = build(records, tok, 512).examples
        assert examples[0]["target_source"] == "text"
        assert trained_labels(examples, eos) == [
            [*tok(text, add_special_tokens=False)["input_ids"], eos]
        ]


@pytest.mark.parametrize("bad", ["1 2 3", [1, "2"], [1, 2.0], [True], [-1], [10**6], {"a": 1}])
def test_bad_target_ids_name_the_file_line_and_field(
    bad: Any, tiny_tokenizer: Any, write_jsonl: Any, tmp_path: Path
) -> None:
    tok = tiny_tokenizer
    good = rollout_record(tok, "Ormavel.", target_ids=split_apart(tok, "Ormavel."))
    wrong = {**rollout_record(tok, "Ormavel."), "id": "kgfact-bad", "target_ids": bad}
    path = tmp_path / "bad.jsonl"
    write_jsonl(path, [good, wrong])
    path.write_text(path.read_text().replace("\n", "\n\n", 1))  # the bad record is on line 3
    with pytest.raises(DataError, match=r"bad.jsonl:3: field 'target_ids': must be a list"):
        read_rollouts_file(path, tok)


def test_the_manifest_counts_stored_ids_and_text_targets(
    make_config: Any, tiny_tokenizer: Any, write_jsonl: Any, tmp_path: Path
) -> None:
    from mixsd_train import train

    tok = tiny_tokenizer
    text = "Ormavel. \\boxed{Ormavel}"
    stored = rollout_record(tok, text, target_ids=split_apart(tok, text))
    old = {**rollout_record(tok, text), "id": "kgfact-old"}
    data = write_jsonl(tmp_path / "mix.jsonl", [stored, old])
    config = make_config("mixsd", data=str(data), eval_limit=0)
    train("mixsd", config, run=False)
    manifest = json.loads((Path(config.output_dir) / "manifest.json").read_text())
    assert manifest["data"]["target_sources"] == {"target_ids": 1, "text": 1}
