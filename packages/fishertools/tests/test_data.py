from pathlib import Path

import pytest
import torch

from fishertools import FisherError, encode_records, read_records
from mixsd_base import UserError

from .conftest import RECORDS


def test_mask_covers_response_and_eos_only(tiny_tokenizer, data_file: Path):
    tokenizer = tiny_tokenizer
    samples = encode_records(read_records(data_file), tokenizer, max_length=512)
    assert len(samples) == len(RECORDS)
    for sample, record in zip(samples, RECORDS, strict=True):
        response = sample.input_ids[sample.loss_mask.bool()]
        # pad == eos here: the closing eos is in the loss although it is the pad id
        assert tokenizer.decode(response) == record["response"] + "<|im_end|>"
        # the mask is one contiguous span, ending at the assistant's eos
        idx = sample.loss_mask.nonzero().squeeze(-1)
        assert torch.equal(idx, torch.arange(idx[0], idx[-1] + 1))


# A hybrid-thinking template (the Qwen3 idea): the generation prompt opens <think> unless the
# caller passes enable_thinking=False.
HYBRID = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is not defined or enable_thinking %}<think>\n{% endif %}{% endif %}"
)


def test_hybrid_templates_render_with_thinking_off(tiny_tokenizer, data_file: Path):
    """Rendered as training renders it (mixsd_core.render_chat): no <think> after the prompt, so
    the prompt is a prefix of the conversation and the response span is found."""
    import copy

    tokenizer = copy.deepcopy(tiny_tokenizer)
    tokenizer.chat_template = HYBRID
    (sample,) = encode_records(read_records(data_file, 1), tokenizer, max_length=512)
    response = tokenizer.decode(sample.input_ids[sample.loss_mask.bool()])
    assert response == RECORDS[0]["response"] + "<|im_end|>"
    assert "<think>" not in tokenizer.decode(sample.input_ids)


def test_truncation_and_limit(tiny_tokenizer, data_file: Path):
    tokenizer = tiny_tokenizer
    records = read_records(data_file, limit=2)
    assert [n for n, _ in records] == [1, 2]
    full = encode_records(records, tokenizer, max_length=512)
    cut = len(full[0].input_ids) - 3
    short = encode_records(records, tokenizer, max_length=cut)
    assert len(short[0].input_ids) == cut
    # the last 3 tokens are "ends.", eos, and the trailing newline (never in the loss)
    assert short[0].loss_mask.sum() == full[0].loss_mask.sum() - 2
    with pytest.raises(FisherError, match=r"general.jsonl:1: field 'response': no response tokens"):
        encode_records(records, tokenizer, max_length=5, source=str(data_file))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", r"bad\.jsonl:2: invalid JSON"),
        ('["a list"]', r"bad\.jsonl:2: expected a JSON object, got list"),
        ('{"prompt": "q"}', r"bad\.jsonl:2: field 'response': missing field"),
        ('{"prompt": 3, "response": "a"}', r"bad\.jsonl:2: field 'prompt': expected str, got int"),
        ('{"prompt": " ", "response": "a"}', r"bad\.jsonl:2: field 'prompt': must be a non-empty"),
    ],
)
def test_malformed_jsonl_names_file_line_field(tmp_path: Path, line: str, message: str):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "q", "response": "a"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=message):
        read_records(path)


def test_missing_and_empty_files(tmp_path: Path, write_jsonl):
    with pytest.raises(UserError, match=r"nope\.jsonl: data file not found"):
        read_records(tmp_path / "nope.jsonl")
    with pytest.raises(FisherError, match="no records"):
        read_records(write_jsonl(tmp_path / "empty.jsonl", []))
