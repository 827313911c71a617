"""Hybrid-thinking templates (Qwen3's ``enable_thinking``) render with thinking off on
forgetbench's paths: the in-domain prompts, the reference set and the held-out tasks (where
lm-eval's ``HFLM`` renders the chat itself).

The tiny hybrid model's template closes an empty ``<think>`` block after the assistant header
only when thinking is off (``THINKING_OFF_REPLY_START``), as Qwen3's does; ``chat_renders``
records every chat the tokenizer renders, whoever asks for it.
"""

from __future__ import annotations

from pathlib import Path

import forgetbench
from forgetbench._indomain import generate_replies
from forgetbench._refloss import reference_set
from mixsd_core.testing import THINKING_OFF_REPLY_START


def _all_thinking_off(renders: list[str]) -> bool:
    return bool(renders) and all(r.endswith(THINKING_OFF_REPLY_START) for r in renders)


def test_indomain_prompts_render_thinking_off(tiny_hybrid_lm, chat_renders, make_records) -> None:
    model, tok = tiny_hybrid_lm
    renders = chat_renders(tok)
    records = make_records(2)
    replies = generate_replies(model, tok, records, batch_size=2, max_new_tokens=2)
    assert len(replies) == len(records)
    assert len(renders) >= len(records) and _all_thinking_off(renders)


def test_reference_set_renders_thinking_off(
    tiny_hybrid_lm, tiny_hybrid_model_dir: Path, chat_renders, tmp_path: Path
) -> None:
    model, tok = tiny_hybrid_lm
    renders = chat_renders(tok)
    prompts = [forgetbench.math_prompt("What is 2 + 3?")]

    def never(spec: str) -> tuple[object, object]:
        raise AssertionError("the loaded base model is passed in")

    ref = reference_set(
        str(tiny_hybrid_model_dir),
        prompts,
        max_new_tokens=2,
        batch_size=1,
        cache_dir=tmp_path,
        load=never,
        base=(model, tok),
    )
    # What later runs score against (the cached prompts) and what was rendered now.
    assert len(ref["rendered"]) == len(prompts) and _all_thinking_off(ref["rendered"])
    assert _all_thinking_off(renders)


def test_heldout_lm_eval_renders_thinking_off(tiny_hybrid_lm, chat_renders) -> None:
    """Through ``run_heldout`` as ``forgetbench eval`` calls it: lm-eval's HFLM renders the chat
    with the tokenizer it is given, and must pass the switch."""
    model, tok = tiny_hybrid_lm
    renders = chat_renders(tok)
    scores, samples, _ = forgetbench.run_heldout(
        model, tok, ["fb_gsm8k100"], limit=1, batch_size=1, max_new_tokens=2
    )
    assert scores["fb_gsm8k100"]["n"] == len(samples) == 1
    assert _all_thinking_off(renders), renders
