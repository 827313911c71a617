from pathlib import Path

import pytest
import torch

from fishertools import FisherError, encode_records, read_records
from mixsd_base import UserError

from .conftest import RECORDS, write_jsonl


def test_mask_covers_response_and_eos_only(tiny, data_file: Path):
    _, tokenizer = tiny
    samples = encode_records(read_records(data_file), tokenizer, max_length=512)
    assert len(samples) == len(RECORDS)
    for sample, record in zip(samples, RECORDS, strict=True):
        response = sample.input_ids[sample.loss_mask.bool()]
        # pad == eos here: the closing eos is in the loss although it is the pad id
        assert tokenizer.decode(response) == record["response"] + "<|im_end|>"
        # the mask is one contiguous span, ending at the assistant's eos
        idx = sample.loss_mask.nonzero().squeeze(-1)
        assert torch.equal(idx, torch.arange(idx[0], idx[-1] + 1))


def test_truncation_and_limit(tiny, data_file: Path):
    _, tokenizer = tiny
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


def test_missing_and_empty_files(tmp_path: Path):
    with pytest.raises(UserError, match=r"nope\.jsonl: data file not found"):
        read_records(tmp_path / "nope.jsonl")
    with pytest.raises(FisherError, match="no records"):
        read_records(write_jsonl(tmp_path / "empty.jsonl", []))
