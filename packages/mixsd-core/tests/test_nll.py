"""Target NLL on the tiny model: exact per-token values, summaries, overlap, errors, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from mixsd_base import DataError, UserError
from mixsd_core import (
    NLLConfig,
    NLLError,
    ScoredTarget,
    high_nll_overlap,
    paired_nll,
    render_prompts,
    score_targets,
    summarize_nll,
)
from mixsd_core import _nll as nll_module


def _hand_nll(model: Any, tokenizer: Any, record: dict[str, Any]) -> list[float]:
    """The obvious way: one unpadded sequence, full logits, position by position."""
    naive, _ = render_prompts(tokenizer, record)
    prompt = tokenizer(naive, add_special_tokens=False)["input_ids"]
    target = tokenizer(record["target"], add_special_tokens=False)["input_ids"]
    ids = [*prompt, *target, tokenizer.eos_token_id]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    out = []
    for pos in range(len(prompt), len(ids)):
        logp = torch.log_softmax(logits[pos - 1], dim=-1)
        out.append(-float(logp[ids[pos]]))
    return out


def test_per_token_nll_matches_hand_loop_and_batching(tiny_lm: Any, make_records: Any) -> None:
    model, tokenizer = tiny_lm
    records = make_records(3)
    records[2]["target"] = "A much longer target, so that the rows of a batch differ. " * 2
    single = score_targets(model, tokenizer, records, batch_size=1)
    batched = score_targets(model, tokenizer, records, batch_size=3)
    for record, one, many in zip(records, single, batched, strict=True):
        expected = _hand_nll(model, tokenizer, record)
        assert one.id == many.id == record["id"]
        assert one.token_ids[-1] == tokenizer.eos_token_id
        assert len(one.nll) == len(many.nll) == len(expected) == len(one.token_ids)
        assert one.nll == pytest.approx(expected, abs=1e-4)
        assert many.nll == pytest.approx(one.nll, abs=1e-4)
    assert all(v > 0 for s in batched for v in s.nll)


def test_summary_thresholds_shares_and_cdf() -> None:
    scored = [
        ScoredTarget("a", [1, 2, 3, 4], [1.0, 9.0, 3.0, 8.0]),
        ScoredTarget("b", [2, 5], [12.0, 7.0]),
    ]
    s = summarize_nll(scored, [4.0, 8.0], quantiles=5)
    assert s["tokens"] == 6 and s["records"] == 2
    assert s["mean_nll"] == pytest.approx(40.0 / 6)
    assert s["tokens_above"] == {"4": 4, "8": 2}  # strictly greater: 8.0 is not above 8
    assert s["share_above"]["8"] == pytest.approx(2 / 6)
    assert s["high_nll_types"] == {"4": 3, "8": 1}  # > 4: ids 2 4 5; > 8: only id 2
    assert s["cdf"]["probability"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    # sorted: 1 3 7 8 9 12; numpy-style linear interpolation
    assert s["cdf"]["nll"] == pytest.approx([1.0, 4.0, 7.5, 8.75, 12.0])
    assert s["per_record"][0] == {"id": "a", "tokens": 4, "mean_nll": 5.25, "max_nll": 9.0}
    assert s["per_record"][1]["mean_nll"] == pytest.approx(9.5)


def test_overlap_counts_and_jaccard(tiny_lm: Any) -> None:
    _, tokenizer = tiny_lm
    a = [ScoredTarget("x", [10, 11, 12, 13], [9.0, 9.5, 1.0, 20.0])]  # high: 10 11 13
    b = [ScoredTarget("y", [11, 13, 14, 12], [8.5, 9.0, 10.0, 8.0])]  # high: 11 13 14
    o = high_nll_overlap(a, b, 8.0, tokenizer=tokenizer)
    assert (o["data_types"], o["compare_types"], o["shared"], o["union"]) == (3, 3, 2, 4)
    assert (o["data_only"], o["compare_only"]) == (1, 1)
    assert o["jaccard"] == pytest.approx(0.5)
    assert {t["id"] for t in o["top_shared"]} == {11, 13}
    assert o["top_data_only"][0]["token"] == tokenizer.convert_ids_to_tokens(10)
    assert high_nll_overlap(a, b, 100.0)["jaccard"] == 0.0


def test_paired_counts_only_shared_ids_and_measures_overlap_per_example() -> None:
    data = [  # MixSD-like
        ScoredTarget("a", [1, 2, 3, 9], [9.0, 1.0, 6.0, 0.5]),
        ScoredTarget("z", [7], [20.0]),  # not in compare: left out
        ScoredTarget("b", [4, 5], [2.0, 10.0]),
    ]
    compare = [  # SFT-like
        ScoredTarget("b", [6, 5], [9.0, 3.0]),
        ScoredTarget("a", [1, 3, 7], [12.0, 9.0, 4.0]),
        ScoredTarget("y", [8], [30.0]),  # not in data: left out
    ]
    p = paired_nll(data, compare, [5.0, 8.0, 100.0])
    assert p["n"] == 2 and p["ids"] == ["a", "b"]  # data's order
    assert p["data"]["tokens"] == 6 and p["compare"]["tokens"] == 5
    assert p["data"]["tokens_above"] == {"5": 3, "8": 2, "100": 0}
    assert p["compare"]["tokens_above"] == {"5": 3, "8": 3, "100": 0}  # 12, 9, 9
    assert p["data"]["share_above"]["8"] == pytest.approx(2 / 6)
    assert p["compare"]["share_above"]["8"] == pytest.approx(3 / 5)
    assert p["compare_over_data"]["8"] == pytest.approx((3 / 5) / (2 / 6))
    assert p["compare_over_data"]["5"] == pytest.approx((3 / 5) / (3 / 6))
    assert p["compare_over_data"]["100"] is None  # data has none above: no ratio
    assert p["per_example"][0] == {  # example a, for resampling
        "data": {"tokens": 4, "above": {"5": 2, "8": 1, "100": 0}},
        "compare": {"tokens": 3, "above": {"5": 2, "8": 2, "100": 0}},
    }
    # > 8: a: SFT high {1, 3}, both in a's MixSD target -> 1; b: SFT high {6}, absent -> 0
    o8 = p["overlap"]["8"]
    assert o8["compare_high_in_data"] == pytest.approx(0.5) and o8["compare_high_examples"] == 2
    # MixSD high: a {1} (in SFT's a), b {5} (in SFT's b, though not high there)
    assert o8["data_high_in_compare"] == pytest.approx(1.0) and o8["data_high_examples"] == 2
    # Jaccard of the high sets: a {1} vs {1, 3} = 1/2; b {5} vs {6} = 0
    assert o8["jaccard"] == pytest.approx(0.25) and o8["jaccard_examples"] == 2
    # > 5: a {1, 3} vs {1, 3}: all kept, Jaccard 1; b {5} vs {6}: 0
    assert p["overlap"]["5"]["compare_high_in_data"] == pytest.approx(0.5)
    assert p["overlap"]["5"]["jaccard"] == pytest.approx(0.5)
    assert p["overlap"]["100"] == {
        "compare_high_in_data": None,
        "compare_high_examples": 0,
        "data_high_in_compare": None,
        "data_high_examples": 0,
        "jaccard": None,
        "jaccard_examples": 0,
    }
    none = paired_nll(data, [ScoredTarget("q", [1], [9.0])])
    assert none["n"] == 0 and none["data"]["tokens"] == 0
    assert none["data"]["share_above"] == {"5": None, "8": None}


def test_run_with_known_nll_vectors(
    tmp_path: Path,
    tiny_model_dir: Path,
    make_records: Any,
    write_jsonl: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = make_records(3)
    data = write_jsonl(tmp_path / "sft.jsonl", records)
    rollout = [dict(r, verified=v) for r, v in zip(records, (True, False, None), strict=True)]
    compare = write_jsonl(tmp_path / "mix.jsonl", rollout)
    fake = {
        "sft": [[9.0, 1.0], [10.0, 2.0, 3.0], [4.0, 12.0]],
        "mix": [[1.0, 2.0], [9.0, 0.5]],  # the verified = False record is left out
    }
    calls: list[int] = []

    def fake_score(model: Any, tokenizer: Any, recs: Any, **kw: Any) -> list[ScoredTarget]:
        vectors = fake["sft" if len(calls) == 0 else "mix"]
        calls.append(len(recs))
        return [
            ScoredTarget(r["id"], [100 + i + j for j in range(len(v))], v)
            for i, (r, v) in enumerate(zip(recs, vectors, strict=True))
        ]

    monkeypatch.setattr(nll_module, "score_targets", fake_score)
    out = tmp_path / "nll" / "cmp.json"
    config = NLLConfig(
        model=str(tiny_model_dir),
        data=str(data),
        compare=str(compare),
        out=str(out),
        thresholds=[2.5],
        quantiles=3,
    )
    result = nll_module.run_nll(config)
    assert calls == [3, 2]
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["thresholds"] == [2.5, 8.0]
    sft, mix = result["files"]["data"], result["files"]["compare"]
    assert sft["tokens"] == 7 and sft["mean_nll"] == pytest.approx(41.0 / 7)
    assert sft["share_above"] == pytest.approx({"2.5": 5 / 7, "8": 3 / 7})
    assert mix["skipped_unverified"] == 1 and mix["records"] == 2
    assert mix["share_above"]["8"] == pytest.approx(1 / 4)
    # > 8: sft ids {100, 101, 103}, mix id {101}: shared 1 of 3
    assert result["overlap"]["8"]["shared"] == 1
    assert result["overlap"]["8"]["jaccard"] == pytest.approx(1 / 3)
    # Paired: the failed rollout record drops its fact from both sides.
    paired = result["paired"]
    assert paired["n"] == 2 and paired["ids"] == [records[0]["id"], records[2]["id"]]
    assert paired["thresholds"] == [2.5, 5.0, 8.0]
    assert paired["data"]["tokens"] == 4 and paired["data"]["tokens_above"]["8"] == 2
    assert paired["compare"]["tokens"] == 4 and paired["compare"]["tokens_above"]["8"] == 1
    assert paired["compare_over_data"]["8"] == pytest.approx(0.5)
    assert not list(out.parent.glob("*.partial"))


def test_run_pairs_the_ids_in_both_files(
    tmp_path: Path, tiny_model_dir: Path, make_records: Any, write_jsonl: Any
) -> None:
    records = make_records(4)
    data = write_jsonl(tmp_path / "sft.jsonl", records)
    # A rollout file that kept 3 of the 4 facts, one of them failed.
    kept = [dict(r, verified=v) for r, v in zip(records[1:], (True, False, True), strict=True)]
    compare = write_jsonl(tmp_path / "mix.jsonl", kept)
    for all_records in (False, True):
        out = tmp_path / f"nll-{all_records}.json"
        config = NLLConfig(
            model=str(tiny_model_dir),
            data=str(data),
            compare=str(compare),
            out=str(out),
            all_records=all_records,
            batch_size=3,
        )
        result = nll_module.run_nll(config)
        assert result["thresholds"] == [8.0]  # the per-file keys are as before
        assert set(result["files"]["data"]["share_above"]) == {"8"}
        paired = result["paired"]
        shared = [records[1]["id"], records[3]["id"]]  # in both, not failed
        assert paired["n"] == len(shared) and paired["ids"] == shared
        assert set(paired["data"]["share_above"]) == {"5", "8"}
        for role in ("data", "compare"):
            rows = {r["id"]: r["tokens"] for r in result["files"][role]["per_record"]}
            assert paired[role]["tokens"] == sum(rows[i] for i in shared)
        assert json.loads(out.read_text())["paired"] == json.loads(json.dumps(paired))


def test_bad_inputs(tmp_path: Path, write_jsonl: Any) -> None:
    with pytest.raises(DataError, match="no such data file"):
        nll_module.load_targets(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "q", "target": "t"}\n{"id": "b", oops\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: invalid JSON"):
        nll_module.load_targets(bad)
    nofield = write_jsonl(tmp_path / "nofield.jsonl", [{"id": "a", "prompt": "q"}])
    with pytest.raises(DataError, match=r"nofield\.jsonl:1: field 'target': missing field"):
        nll_module.load_targets(nofield)
    failed = write_jsonl(
        tmp_path / "f.jsonl", [{"id": "a", "prompt": "q", "target": "t", "verified": False}]
    )
    with pytest.raises(NLLError, match=r"f\.jsonl: no records to score"):
        nll_module.load_targets(failed)
    assert len(nll_module.load_targets(failed, verified_only=False)[0]) == 1
    with pytest.raises(NLLError, match="field 'batch_size': must be >= 1, got 0"):
        NLLConfig(data="x", out="y", batch_size=0)
    with pytest.raises(NLLError, match="thresholds"):
        NLLConfig(data="x", out="y", thresholds=[math.nan])
    assert issubclass(NLLError, UserError)


def test_cli(
    cli: Any, tmp_path: Path, tiny_model_dir: Path, make_records: Any, write_jsonl: Any
) -> None:
    data = write_jsonl(tmp_path / "a.jsonl", make_records(4))
    compare = write_jsonl(tmp_path / "b.jsonl", make_records(2))
    out = tmp_path / "nll" / "ab.json"
    args = ["nll", "--model", str(tiny_model_dir), "--data", str(data), "--compare", str(compare)]
    args += ["--out", str(out), "--threshold", "4", "--batch-size", "3", "--limit", "3", "--quiet"]
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert "mean NLL" in stdout and "Jaccard" in stdout
    saved = json.loads(out.read_text())
    assert saved["thresholds"] == [4.0, 8.0]
    assert saved["files"]["data"]["records"] == 3 and saved["files"]["compare"]["records"] == 2
    assert len(saved["files"]["data"]["cdf"]["nll"]) == 101
    assert set(saved["overlap"]) == {"4", "8"}
    assert saved["paired"]["n"] == 2  # a's first 3 records include b's 2
    assert set(saved["paired"]["overlap"]) == {"4", "5", "8"}
    assert "paired (the 2 ids in both files)" in stdout

    # The same run from a config file and --set: the same numbers.
    config = tmp_path / "nll.yaml"
    config.write_text(
        f"model: {tiny_model_dir}\ndata: {data}\ncompare: {compare}\nthresholds: [4]\n"
        "batch_size: 3\n"
    )
    again = tmp_path / "again.json"
    code, _, err = cli("nll", "-c", str(config), "--set", "limit=3", "--out", str(again), "--quiet")
    assert code == 0, err
    redone = json.loads(again.read_text())
    assert redone["files"] == saved["files"] and redone["overlap"] == saved["overlap"]

    code, _, err = cli("nll", "-c", str(config), "--set", "quantiles=1", "--out", str(again))
    assert code == 1 and err == f"error: {config}: field 'quantiles': must be >= 2, got 1\n"
    code, _, err = cli("nll", "--data", str(data))
    assert code == 1 and err == "error: field 'out': is required\n"
