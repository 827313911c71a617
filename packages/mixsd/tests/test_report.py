"""The report reads what each target file is from run.json, never from its name."""

from __future__ import annotations

from mixsd._report import _targets, claims, nll_table


def _summary(share: float) -> dict:
    return {"records": 4, "tokens": 40, "mean_nll": 1.0, "share_above": {"8": share}}


def test_claim_r1_compares_the_records_with_the_paper_alpha_by_kind():
    nll = {"canon": _summary(0.2), "other": _summary(0.1), "mine": _summary(0.05)}
    targets = {
        "canon": {"kind": "records", "alpha": None},
        "other": {"kind": "rollout", "alpha": 0.3},
        "mine": {"kind": "rollout", "alpha": 0.5},
    }
    data = {"rows": [], "nll": nll, "targets": targets, "fisher": None}
    (claim, measured, holds), *_ = claims(data)
    assert "SFT ÷ mine" in claim
    assert measured == "20.00% ÷ 5.00% = 4.00×" and holds == "yes"
    table, ratios = nll_table(nll, targets)
    assert ratios == {"other": 2.0, "mine": 4.0}  # the records' own row has no ratio
    assert "| canon | 4 | 40 | 1.000 | 20.00% | 1.00× |" in table


def test_run_json_without_targets_gets_them_from_the_same_label_functions():
    run = {
        "methods": [
            {"method": "sft", "alpha": None, "label": "sft"},
            {"method": "mixsd-kl", "alpha": 0.3, "label": "mixsd-kl-a0.3"},
        ],
        "nll": {"sft": "nll/sft.json", "mixsd-a0.3": "nll/mixsd-a0.3.json"},
    }
    assert _targets(run) == {
        "sft": {"kind": "records", "alpha": None},
        "mixsd-a0.3": {"kind": "rollout", "alpha": 0.3},
    }
    with_targets = {**run, "targets": {"x": {"kind": "records", "alpha": None}}}
    assert _targets(with_targets) == with_targets["targets"]
