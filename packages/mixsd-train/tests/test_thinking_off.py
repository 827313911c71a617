"""Hybrid-thinking templates (Qwen3's ``enable_thinking``) render with thinking off in training:
the sft / mixsd / mixsd-kl / opsd examples and the rollout files they are read from.

The tiny hybrid model's template closes an empty ``<think>`` block after the assistant header
only when thinking is off (``THINKING_OFF_REPLY_START``), as Qwen3's does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixsd_core import render_prompts
from mixsd_core.testing import THINKING_OFF_REPLY_START
from mixsd_train import TrainError, read_rollouts_file
from mixsd_train._data import kl_examples, nll_examples, prompt_examples


def test_training_examples_render_thinking_off(tiny_hybrid_lm, chat_renders, make_records) -> None:
    _, tok = tiny_hybrid_lm
    renders = chat_renders(tok)
    records = make_records(2)
    for example, record in zip(nll_examples(records, tok, 512).examples, records, strict=True):
        prompt_ids = example["input_ids"][: example["prompt_len"]]
        assert tok.decode(prompt_ids).endswith(THINKING_OFF_REPLY_START)
        # The labels start right after the closed block: the target, not a thought.
        target = tok.decode(example["input_ids"][example["prompt_len"] :])
        assert target == record["target"] + tok.eos_token
    for example in prompt_examples(records, tok, "clear").examples:
        assert tok.decode(example["naive_ids"]).endswith(THINKING_OFF_REPLY_START)
        assert tok.decode(example["expert_ids"]).endswith(THINKING_OFF_REPLY_START)
    assert renders and all(r.endswith(THINKING_OFF_REPLY_START) for r in renders)
    # mixsd-kl reads both prompts from the rollout file (checked on reading, below).
    rollouts = []
    for record in records:
        naive, expert = render_prompts(tok, record)
        rollouts.append({**record, "naive_prompt": naive, "expert_prompt": expert})
    for example in kl_examples(rollouts, tok, 512).examples:
        teacher_prompt = example["teacher_input_ids"][: example["teacher_prompt_len"]]
        assert tok.decode(teacher_prompt).endswith(THINKING_OFF_REPLY_START)


def test_rollout_rendered_with_thinking_on_is_refused(
    tiny_hybrid_lm, make_records, tmp_path: Path
) -> None:
    _, tok = tiny_hybrid_lm
    (record,) = make_records(1)
    naive, expert = render_prompts(tok, record)
    row = {**record, "naive_prompt": naive, "expert_prompt": expert, "verified": True}
    good = tmp_path / "off.jsonl"
    good.write_text(json.dumps(row) + "\n")
    assert [r["id"] for r in read_rollouts_file(good, tok)] == [record["id"]]
    thinking_on = tok.apply_chat_template(
        [{"role": "user", "content": record["prompt"]}], tokenize=False, add_generation_prompt=True
    )
    assert not thinking_on.endswith(THINKING_OFF_REPLY_START)
    bad = tmp_path / "on.jsonl"
    bad.write_text(json.dumps({**row, "naive_prompt": thinking_on}) + "\n")
    with pytest.raises(TrainError, match="another tokenizer or chat template"):
        read_rollouts_file(bad, tok)
