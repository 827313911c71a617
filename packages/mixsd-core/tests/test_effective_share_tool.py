"""tools/effective_share.py replays finished targets teacher-forced: on a traced rollout it
must find the sides the decoder recorded."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from mixsd_core import RolloutConfig, run_rollout

TOOL = Path(__file__).resolve().parents[3] / "tools" / "effective_share.py"


def test_replay_finds_the_sides_the_decoder_recorded(tiny_lm, make_records, write_jsonl, tmp_path):
    spec = importlib.util.spec_from_file_location("effective_share", TOOL)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    data = write_jsonl(tmp_path / "train.jsonl", make_records())
    out = tmp_path / "traced.jsonl"
    config = RolloutConfig(
        data=str(data), out=str(out), alpha=0.5, batch_size=4, max_new_tokens=12,
        no_verify=True, trace=True,
    )  # fmt: skip
    model, tokenizer = tiny_lm
    run_rollout(config, model=model, tokenizer=tokenizer, progress=False)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    sides = "".join(r["sides"] for r in records)
    found = tool.effective_share(model, tokenizer, records)
    assert found["disagreements"] == sum(c != "." for c in sides) > 0
    assert found["naive"] == sides.count("N")
