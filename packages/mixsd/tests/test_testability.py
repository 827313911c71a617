"""The report's "what this run can test" table is computed from the run's own numbers."""

from __future__ import annotations

import math

import pytest

from mixsd._testability import MIN_R4_POINTS, bootstrap_share_ratio, claim_scope, heldout_signal


def _example(d_tokens: int, d_above: int, c_tokens: int, c_above: int) -> dict:
    return {
        "data": {"tokens": d_tokens, "above": {"8": d_above}},
        "compare": {"tokens": c_tokens, "above": {"8": c_above}},
    }


def test_bootstrap_interval_brackets_the_ratio_and_is_reproducible():
    examples = [_example(40, 1, 10, 2), _example(60, 2, 12, 3), _example(50, 0, 8, 2)] * 3
    lo, hi = bootstrap_share_ratio(examples, "8")
    point = (21 / 90) / (9 / 450)
    assert lo <= point <= hi and lo < hi
    assert bootstrap_share_ratio(examples, "8") == (lo, hi)  # a seeded stream
    identical = [_example(40, 1, 10, 2)] * 6  # no spread between examples: no spread in the ratio
    assert bootstrap_share_ratio(identical, "8") == pytest.approx((8.0, 8.0))
    assert bootstrap_share_ratio(examples[:1], "8") is None
    # Data with no token above 8 in most resamples: the upper bound is infinite, not an error.
    assert math.isinf(bootstrap_share_ratio([_example(40, 0, 10, 2)] * 4, "8")[1])


def _row(method: str, **fields) -> dict:
    return {"method": method, "heldout": {}, "refloss": None, **fields}


def _data(rows: list[dict], paired: dict | None = None) -> dict:
    return {"rows": rows, "nll_paired": paired or {}}


def _verdicts(data: dict, r4: dict | None = None) -> dict[str, tuple[str, str]]:
    table = claim_scope(data, r4, threshold="8", names={"fb_mmlu": "MMLU"})
    return {claim.split()[0]: (has, ok) for claim, _, has, ok in table}


def test_r2_is_testable_only_when_sft_forgets_beyond_twice_its_standard_error():
    noisy = _verdicts(_data([_row("sft", refloss=0.001, refloss_se=0.003)]))
    assert noisy["R2"] == ("SFT ΔL_ref +0.0010 ± 0.0030 (within noise: nothing to forget less than)",
                           "**no**")  # fmt: skip
    clear = _verdicts(_data([_row("sft", refloss=0.05, refloss_se=0.01)]))
    assert clear["R2"][1] == "yes"
    assert _verdicts(_data([_row("sft", refloss=0.05)]))["R2"][1] == "**no**"  # no SE recorded


def test_r3_needs_base_signal_above_chance_and_states_the_noise_of_its_n():
    base = _row("base", heldout={"fb_mmlu": 0.25}, heldout_n={"fb_mmlu": 16})
    has, ok = _verdicts(_data([base]))["R3"]
    # SE = sqrt(0.25 * 0.75 / 16) = 10.8 points; 2√2 SE = 31 points; MMLU's chance is 25%.
    assert "MMLU 25.0% (chance 25%) ± 10.8 (n = 16; differences under 31 points" in has
    assert ok == "**no**"  # at chance: nothing to retain
    clear = _row("base", heldout={"fb_mmlu": 0.6}, heldout_n={"fb_mmlu": 100})
    assert _verdicts(_data([clear]))["R3"][1] == "yes"
    gsm8k = _row("base", heldout={"fb_gsm8k": 0.05}, heldout_n={"fb_gsm8k": 100})
    assert _verdicts(_data([gsm8k]))["R3"][1] == "yes"  # free answers: any score is signal
    zero = _row("base", heldout={"fb_gsm8k": 0.0}, heldout_n={"fb_gsm8k": 16})
    assert _verdicts(_data([zero]))["R3"][1] == "**no**"


def test_heldout_signal_is_the_tasks_the_claims_table_compares_on():
    from mixsd._report import claims

    # The quickstart's base: MMLU 12.5% of 16, under chance. Before, "above 0" let R3 say "yes".
    base = _row("base", heldout={"fb_mmlu": 0.125, "fb_gsm8k": 0.05}, heldout_n={"fb_mmlu": 16})
    assert heldout_signal(base) == ["fb_gsm8k"]
    assert heldout_signal({**base, "heldout": {"fb_mmlu": 0.125}}) == []
    sft = _row("sft", heldout={"fb_mmlu": 0.25})
    mixsd = {**_row("mixsd", heldout={"fb_mmlu": 0.25}), "label": "mixsd-a0.5"}
    rows = [{**base, "heldout": {"fb_mmlu": 0.125}}, sft, mixsd]
    data = {**_data(rows), "fisher": None, "nll": {}, "targets": {}}
    r3 = [row for row in claims(data) if row[0].startswith("R3")]
    assert r3 == [
        (
            "R3: held-out ≥ SFT on every task with signal",
            "no held-out task where the base model scores above chance by 2 standard errors",
            "n/a",
        )
    ]


def test_r1_needs_enough_paired_examples_with_sft_tokens_above_8():
    side = {"tokens": 100, "tokens_above": {"8": 3}}
    paired = {
        "mixsd-a0.5": {
            "n": 4,
            "data": {**side, "tokens": 300},
            "compare": side,
            "per_example": [_example(75, 0, 25, 1)] * 4,
        }
    }
    has, ok = _verdicts(_data([], paired))["R1"]
    assert ok == "**no**" and "n = 4 paired examples" in has and "3.0× SFT's length" in has
    paired["mixsd-a0.5"]["n"] = 8
    assert _verdicts(_data([], paired))["R1"][1] == "yes"
    # The file the claim compares is judged, not the one with most pairs.
    paired["mixsd-a0.3"] = {**paired["mixsd-a0.5"], "n": 11}
    paired["mixsd-a0.5"] = {**paired["mixsd-a0.5"], "n": 4}
    table = claim_scope(_data([], paired), None, threshold="8", names={}, r1_file="mixsd-a0.5")
    assert table[0][2].startswith("mixsd-a0.5: n = 4") and table[0][3] == "**no**"


def test_r4_needs_enough_checkpoints_with_an_evaluated_measure():
    points = [{"forgetting": 0.1}] * MIN_R4_POINTS
    enough = {"measure": "heldout_drop", "name": "the mean held-out drop", "points": points}
    assert _verdicts(_data([]), enough)["R4"][1] == "yes"
    other = {**enough, "measure": "delta_l_ref", "name": "ΔL_ref"}
    assert _verdicts(_data([]), other)["R4"] == (f"{MIN_R4_POINTS} checkpoints with ΔL_ref", "yes")
    own = {**enough, "measure": "delta_nll", "name": "ΔNLL (reference set, mean per sample)"}
    assert _verdicts(_data([]), own)["R4"][1] == "**no**"  # the Fisher stage's own measure
    few = {**enough, "points": points[:4]}
    assert _verdicts(_data([]), few)["R4"][1] == "**no**"
    assert _verdicts(_data([]), None)["R4"] == ("no Fisher stage", "**no**")
