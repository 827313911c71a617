"""Which of the paper's claims a run can test, judged from the run's own numbers.

A "no" in the claims table means something only where the run holds what the claim compares,
measured above its noise. This module says, per claim, what that needs and whether this run has
it, so a small budget tells the truth about itself:

* R1 needs SFT and MixSD targets on the same examples (paired), with SFT tokens above NLL 8 to
  compare; its interval is a percentile bootstrap over the paired examples.
* R2 needs SFT to forget measurably: SFT's ΔL_ref beyond twice its standard error over the
  reference prompts (forgetbench's ``delta_l_ref_se``), else "forgets less" has nothing to be
  measured against.
* R3 needs a held-out task where the base model scores above chance (forgetbench's
  ``HeldoutTask.chance``: 0 for free answers, 0.25 for MMLU) by more than two binomial standard
  errors (:func:`heldout_signal`, also what the R3 and R4 rows of the claims table compare on);
  the same standard error says how large a difference the task's n can resolve.
* R4 needs at least ``MIN_R4_POINTS`` pooled checkpoints with one evaluated forgetting measure:
  the mean held-out drop (the paper's) or ΔL_ref (``fisher.checkpoint_suites: [refloss]``).
"""

from __future__ import annotations

import math
import random
from typing import Any

__all__ = [
    "MIN_R4_POINTS",
    "bootstrap_share_ratio",
    "claim_scope",
    "claim_scope_table",
    "format_interval",
    "heldout_signal",
]

MIN_R4_POINTS = 20  # the cpu-claims goal: a correlation over fewer points says little
R4_MEASURES = ("heldout_drop", "delta_l_ref")  # evaluated forgetting: what can test R4
MIN_R1_PAIRS = 5  # below this a share ratio is a handful of tokens
RESAMPLES = 2000


def bootstrap_share_ratio(
    per_example: list[dict[str, Any]], key: str, *, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float] | None:
    """95% percentile interval of compare's share of tokens above ``key`` ÷ data's, resampling
    the paired examples (``mixsd_core.paired_nll``'s ``per_example``). A resample where data
    has no token above is an infinite ratio. None below two examples."""
    if len(per_example) < 2:
        return None
    rng = random.Random(seed)  # a fixed stream: the same run gives the same interval
    ratios = []
    for _ in range(resamples):
        picked = [per_example[rng.randrange(len(per_example))] for _ in per_example]
        sums = {
            side: (
                sum(p[side]["above"][key] for p in picked),
                sum(p[side]["tokens"] for p in picked),
            )
            for side in ("data", "compare")
        }
        (d_above, d_tokens), (c_above, c_tokens) = sums["data"], sums["compare"]
        if not d_tokens or not c_tokens:
            continue
        ratios.append(math.inf if d_above == 0 else (c_above / c_tokens) / (d_above / d_tokens))
    if not ratios:
        return None
    ratios.sort()
    return ratios[int(0.025 * (len(ratios) - 1))], ratios[int(0.975 * (len(ratios) - 1))]


def format_interval(bounds: tuple[float, float] | None) -> str:
    if bounds is None:
        return ""
    lo, hi = bounds
    return f"; 95% bootstrap interval {lo:.2f}× to " + ("∞" if math.isinf(hi) else f"{hi:.2f}×")


def _r1(data: dict[str, Any], threshold: str, name: str | None) -> tuple[str, str, bool]:
    paired = data.get("nll_paired") or {}
    needs = f"SFT and MixSD targets on the same examples (≥ {MIN_R1_PAIRS}), SFT tokens above NLL 8"
    if name not in paired:  # the file the claim compares (the paper's alpha), else the largest
        name = max(paired, key=lambda k: paired[k]["n"]) if paired else None
    if name is None:
        return needs, "no rollout file shares examples with the SFT records", False
    best = paired[name]
    sft_above = best["compare"]["tokens_above"].get(threshold) or 0
    length = (
        best["data"]["tokens"] / best["compare"]["tokens"] if best["compare"]["tokens"] else None
    )
    shown = (
        f"{name}: n = {best['n']} paired examples, {sft_above} SFT tokens above 8"
        + (f"; MixSD targets {length:.1f}× SFT's length" if length else "")
        + format_interval(bootstrap_share_ratio(best.get("per_example") or [], threshold))
    )
    return needs, shown, best["n"] >= MIN_R1_PAIRS and sft_above > 0


def _r2(rows: list[dict[str, Any]]) -> tuple[str, str, bool]:
    needs = "SFT's ΔL_ref above 2 standard errors (over the reference prompts)"
    sft = next((r for r in rows if r["method"] == "sft"), None)
    if sft is None or sft["refloss"] is None:
        return needs, "no SFT reference loss in this run", False
    se = sft.get("refloss_se")
    if se is None:
        return needs, f"SFT ΔL_ref {sft['refloss']:+.4f}, no standard error recorded", False
    ok = sft["refloss"] > 2 * se
    verdict = "beyond noise" if ok else "within noise: nothing to forget less than"
    return needs, f"SFT ΔL_ref {sft['refloss']:+.4f} ± {se:.4f} ({verdict})", ok


def _chance(task: str) -> float:
    from forgetbench import HELDOUT_TASKS

    return HELDOUT_TASKS[task].chance if task in HELDOUT_TASKS else 0.0


def _above_chance(task: str, score: float, n: int | None) -> bool:
    chance = _chance(task)
    if not n:  # without n there is no noise to weigh it against
        return score > chance
    se = math.sqrt(score * (1 - score) / n)
    return score > chance + 2 * se or (chance == 0 and score > 0)


def heldout_signal(base: dict[str, Any] | None) -> list[str]:
    """The held-out tasks with signal: the base model scores above chance by more than two
    binomial standard errors (above 0 for free answers). R3 compares methods on these only, and
    R4's held-out drop is measured on them; a task at chance can only lose noise."""
    if base is None:
        return []
    counts = base.get("heldout_n") or {}
    return [
        task
        for task, score in base["heldout"].items()
        if score is not None and _above_chance(task, score, counts.get(task))
    ]


def _r3(rows: list[dict[str, Any]], names: dict[str, str]) -> tuple[str, str, bool]:
    needs = "a held-out task where the base model scores above chance by 2 standard errors"
    base = next((r for r in rows if r["method"] == "base"), None)
    if base is None or not any(v is not None for v in base["heldout"].values()):
        return needs, "no held-out score of the base model", False
    parts = []
    for task, score in base["heldout"].items():
        if score is None:
            continue
        n = (base.get("heldout_n") or {}).get(task)
        chance = _chance(task)
        shown = f"{names.get(task, task)} {score * 100:.1f}%" + (
            f" (chance {chance * 100:.0f}%)" if chance else ""
        )
        if not n:
            parts.append(shown)
            continue
        se = math.sqrt(score * (1 - score) / n)
        # Two independent scores of this n differ by more than ~2√2 SE only by chance 5%.
        parts.append(
            f"{shown} ± {se * 100:.1f} (n = {n}; differences under "
            f"{2 * math.sqrt(2) * se * 100:.0f} points are noise)"
        )
    return needs, "base: " + "; ".join(parts), bool(heldout_signal(base))


def _r4(r4: dict[str, Any] | None) -> tuple[str, str, bool]:
    needs = (
        f"≥ {MIN_R4_POINTS} pooled checkpoints with one evaluated forgetting measure (the mean "
        "held-out drop, or ΔL_ref)"
    )
    if r4 is None:
        return needs, "no Fisher stage", False
    n = len(r4["points"])
    # The Fisher stage's own ΔNLL is a per-sample mean on its own set, which can disagree in
    # sign with the evaluated ΔL_ref: it is shown, never counted as testing R4.
    ok = r4["measure"] in R4_MEASURES and n >= MIN_R4_POINTS
    return needs, f"{n} checkpoints with {r4['name']}", ok


def claim_scope(
    data: dict[str, Any],
    r4: dict[str, Any] | None,
    *,
    threshold: str,
    names: dict[str, str],
    r1_file: str | None = None,
) -> list[tuple[str, str, str, str]]:
    """(claim, what it needs, what this run has, "yes"/"no") for R1-R4; ``r1_file`` is the
    rollout file the R1 claim compares (the report's choice), else the one with most pairs."""
    rows = data["rows"]
    checks = {
        "R1 (target likelihood)": _r1(data, threshold, r1_file),
        "R2 (forgets less at equal accuracy)": _r2(rows),
        "R3 (held-out retention)": _r3(rows, names),
        "R4 (Fisher alignment predicts forgetting)": _r4(r4),
    }
    return [(c, needs, has, "yes" if ok else "**no**") for c, (needs, has, ok) in checks.items()]


def claim_scope_table(rows: list[tuple[str, str, str, str]]) -> str:
    lines = ["| claim | needs | this run | testable |", "|---|---|---|---|"]
    lines += [f"| {c} | {n} | {h} | {t} |" for c, n, h, t in rows]
    return "\n".join(lines)
