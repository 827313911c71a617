"""Hybrid-thinking templates (Qwen3's ``enable_thinking``) render with thinking off on mixsd-core's
paths: the rollout prompts (naive and expert) and the target-NLL prompts.

The tiny hybrid model's template closes an empty ``<think>`` block after the assistant header
only when thinking is off (``THINKING_OFF_REPLY_START``), as Qwen3's does; a prompt rendered with
thinking on, or without the template, ends at the bare header instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from mixsd_core import RolloutConfig, render_chat, render_prompts, run_rollout, score_targets
from mixsd_core.testing import THINKING_OFF_REPLY_START

USER_TURN = [{"role": "user", "content": "Where was Lio Tarn born?"}]


def test_hybrid_template_tells_thinking_on_from_off(tiny_hybrid_lm) -> None:
    _, tok = tiny_hybrid_lm

    def render(**switch: bool) -> str:
        return tok.apply_chat_template(
            USER_TURN, tokenize=False, add_generation_prompt=True, **switch
        )

    assert render(enable_thinking=False).endswith(THINKING_OFF_REPLY_START)
    for thinking_on in (render(), render(enable_thinking=True)):
        assert thinking_on.endswith("<|im_start|>assistant\n")
        assert "<think>" not in thinking_on
    # The project's one renderer: thinking off, and the prompt is a prefix of its conversation.
    prompt = render_chat(tok, USER_TURN)
    chat = render_chat(
        tok,
        [*USER_TURN, {"role": "assistant", "content": "Port Drume"}],
        add_generation_prompt=False,
    )
    assert prompt.endswith(THINKING_OFF_REPLY_START)
    assert chat == prompt + "Port Drume<|im_end|>\n"


def test_rollout_prompts_render_thinking_off(
    tiny_hybrid_lm, chat_renders, make_records, write_jsonl, tmp_path: Path
) -> None:
    model, tok = tiny_hybrid_lm
    renders = chat_renders(tok)
    records = make_records(2)
    data = write_jsonl(tmp_path / "train.jsonl", records)
    out = tmp_path / "rollouts.jsonl"
    config = RolloutConfig(
        data=str(data), out=str(out), alpha=0.5, batch_size=2, max_new_tokens=3, no_verify=True
    )
    run_rollout(config, model=model, tokenizer=tok, progress=False)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(records)
    for row in rows:
        assert row["naive_prompt"].endswith(THINKING_OFF_REPLY_START)
        assert row["expert_prompt"].endswith(THINKING_OFF_REPLY_START)
    assert len(renders) == 2 * len(records)  # naive + expert per record, nothing else
    assert all(r.endswith(THINKING_OFF_REPLY_START) for r in renders)


def test_target_nll_prompts_render_thinking_off(tiny_hybrid_lm, chat_renders, make_records) -> None:
    model, tok = tiny_hybrid_lm
    renders = chat_renders(tok)
    records = make_records(2)
    scored = score_targets(model, tok, records, batch_size=2)
    assert len(scored) == len(records)
    assert len(renders) >= len(records)
    assert all(r.endswith(THINKING_OFF_REPLY_START) for r in renders)
    # What was scored is the target after that prompt: the NLL count is the target's tokens + EOS.
    for record, target in zip(records, scored, strict=True):
        naive, _ = render_prompts(tok, record)
        assert naive.endswith(THINKING_OFF_REPLY_START)
        target_ids = tok(record["target"], add_special_tokens=False)["input_ids"]
        assert list(target.token_ids) == [*target_ids, tok.eos_token_id]
