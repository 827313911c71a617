from pathlib import Path

import pytest
import torch

from fishertools import FisherError, encode_records, read_records
from fishertools._data import pad_batch

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


def test_pad_batch_right_pads_with_zero_mask(tiny, data_file: Path):
    _, tokenizer = tiny
    samples = encode_records(read_records(data_file, 3), tokenizer, max_length=512)
    ids, mask = pad_batch(samples)
    assert ids.shape == mask.shape == (3, max(len(s.input_ids) for s in samples))
    assert mask.sum() == sum(s.loss_mask.sum() for s in samples)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", r"bad\.jsonl:2: not valid JSON"),
        ('["a list"]', r"bad\.jsonl:2: expected a JSON object"),
        ('{"prompt": "q"}', r"bad\.jsonl:2: missing field 'response'"),
        (
            '{"prompt": 3, "response": "a"}',
            r"bad\.jsonl:2: field 'prompt' must be a non-empty string",
        ),
    ],
)
def test_malformed_jsonl_names_file_line_field(tmp_path: Path, line: str, message: str):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "q", "response": "a"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(FisherError, match=message):
        read_records(path)


def test_missing_and_empty_files(tmp_path: Path):
    with pytest.raises(FisherError, match="data file not found: /"):
        read_records(tmp_path / "nope.jsonl")
    with pytest.raises(FisherError, match="no records"):
        read_records(write_jsonl(tmp_path / "empty.jsonl", []))
