"""The Fisher data renders hybrid-thinking templates (Qwen3's ``enable_thinking``) with thinking
off, with the tokenizer loaded as fishertools loads a folder.

The tiny hybrid model's template closes an empty ``<think>`` block after the assistant header
only when thinking is off (``THINKING_OFF_REPLY_START``), as Qwen3's does, and its conversations
carry the same block before the reply: rendered with thinking on, the prompt would still be a
prefix of the conversation, but the loss mask would cover the block.
"""

from __future__ import annotations

from pathlib import Path

from fishertools import encode_records, read_records
from mixsd_core.testing import THINKING_OFF_REPLY_START

from .conftest import RECORDS


def test_fisher_data_renders_thinking_off(
    tiny_hybrid_model_dir: Path, chat_renders, data_file: Path
) -> None:
    from fishertools._models import load_tokenizer

    tokenizer = load_tokenizer(tiny_hybrid_model_dir)
    renders = chat_renders(tokenizer)
    samples = encode_records(read_records(data_file, 2), tokenizer, max_length=512)
    assert len(samples) == 2
    for sample, record in zip(samples, RECORDS[:2], strict=True):
        text = tokenizer.decode(sample.input_ids)
        assert text.count(THINKING_OFF_REPLY_START) == 1
        # The loss covers the reply and its EOS: not the empty thinking block before it.
        response = tokenizer.decode(sample.input_ids[sample.loss_mask.bool()])
        assert response == record["response"] + tokenizer.eos_token
        prompt = tokenizer.decode(sample.input_ids[: int(sample.loss_mask.nonzero()[0])])
        assert prompt.endswith(THINKING_OFF_REPLY_START)
    # Per record: the prompt (generation prompt, thinking off) and the whole conversation.
    assert len(renders) == 2 * len(samples)
    assert sum(r.endswith(THINKING_OFF_REPLY_START) for r in renders) == len(samples)
