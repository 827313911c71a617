"""The training frontier (issue 18): does an adaptive mixing policy beat the paper's fixed
alphas after training?

Each trained MixSD method is a point (training accuracy over every trained fact, ΔL_ref). The
fixed-alpha points (the blind mask, no rollout options of their own) span a frontier; an
adaptive method (its own ``rollout:`` options, e.g. the gate) is judged against it two ways:

* the issue's test: accuracy ≥ 0.95 × SFT's, and ΔL_ref below every fixed alpha that reaches
  that accuracy;
* above the fixed-alpha hull: its ΔL_ref is below the lower envelope of every mix of two fixed
  alphas (training each on its share of the facts: the convex combination) whose accuracy is at
  least its own. With no fixed alpha that accurate, nothing on the frontier matches it.

Each ΔL_ref has a standard error over the reference prompts, but the methods share those
prompts, so the table also gives the difference to each fixed alpha as accurate (else to the
most accurate one) paired prompt by prompt (its standard error is usually much smaller than
either one's).

When the run measured held-out tasks, the issue's other retention axis, the table adds each
method's held-out average and its difference to the same fixed alphas, paired problem by problem.
"""

from __future__ import annotations

import math
from typing import Any

from forgetbench import delta_l_ref_se, l_ref
from mixsd._report import training_accuracy

__all__ = [
    "SFT_SHARE",
    "beats_fixed_alphas",
    "frontier_lines",
    "frontier_methods",
    "heldout_mean",
    "hull_delta_at",
    "paired_difference",
    "paired_heldout_difference",
]

SFT_SHARE = 0.95  # the accuracy an adaptive setting must keep, as a share of SFT's

Point = tuple[float, float]  # (training accuracy, ΔL_ref)
Rows = dict[str, Any] | list[dict[str, Any]]  # a method's report row, or one per seed


def hull_delta_at(accuracy: float, points: list[Point]) -> float | None:
    """The lowest ΔL_ref the fixed points reach, alone or mixed two at a time, at an accuracy of
    at least ``accuracy``; None when none reaches it."""
    best: float | None = None
    for i, (acc_a, dl_a) in enumerate(points):
        if acc_a >= accuracy:
            best = dl_a if best is None else min(best, dl_a)
        for acc_b, dl_b in points[i + 1 :]:
            (lo, dl_lo), (hi, dl_hi) = sorted([(acc_a, dl_a), (acc_b, dl_b)])
            if lo < accuracy <= hi:  # the mix of the two whose accuracy is exactly `accuracy`
                mixed = dl_lo + (dl_hi - dl_lo) * (accuracy - lo) / (hi - lo)
                best = mixed if best is None else min(best, mixed)
    return best


def beats_fixed_alphas(point: Point, fixed: list[Point], sft_accuracy: float) -> dict[str, Any]:
    """The issue's test and the hull test for one adaptive point."""
    accuracy, delta = point
    reaching = [dl for acc, dl in fixed if acc >= accuracy]
    hull = hull_delta_at(accuracy, fixed)
    return {
        "keeps_accuracy": accuracy >= SFT_SHARE * sft_accuracy,
        "reaching": len(reaching),
        "below_reaching": all(delta < dl for dl in reaching),
        "hull": hull,
        "above_hull": hull is None or delta < hull,
    }


def _seeds(rows: Rows) -> list[dict[str, Any]]:
    return rows if isinstance(rows, list) else [rows]


def _mean_sums(rows: list[dict[str, Any]]) -> list[tuple[float, int]] | None:
    """Each reference response's summed NLL averaged over the runs (with its token count), or
    None when a run lacks them or scored other responses."""
    runs: list[list[Any]] = [r.get("refloss_sums") or [] for r in rows]
    if not runs or any(not sums or len(sums) != len(runs[0]) for sums in runs):
        return None
    tokens = [int(n) for _, n in runs[0]]
    if any([int(n) for _, n in sums] != tokens for sums in runs):
        return None  # other responses: no pairing
    return [(sum(float(s[i][0]) for s in runs) / len(runs), n) for i, n in enumerate(tokens)]


def paired_difference(row: Rows, other: Rows) -> tuple[float, float] | None:
    """ΔL_ref(row) − ΔL_ref(other) and its standard error, prompt by prompt over the shared
    reference responses (each eval's ``nll_sums``); None without them or on other responses.

    Given lists (one row per seed of each method), each response's summed NLL is first averaged
    over the seeds: pooled, the standard error holds the prompt-to-prompt noise of the seeds'
    mean, not a seed-wide shift (two or three seeds cannot estimate that)."""
    mine, theirs = _mean_sums(_seeds(row)), _mean_sums(_seeds(other))
    if mine is None or theirs is None or [n for _, n in mine] != [n for _, n in theirs]:
        return None
    se = delta_l_ref_se(mine, theirs)
    if se is None:
        return None
    return l_ref(mine)[0] - l_ref(theirs)[0], se  # the same tokens on both sides


def _mean_se(by_task: dict[str, list[float]]) -> tuple[float, float | None] | None:
    """The mean over tasks of each task's mean, and its standard error (each task's sample
    standard deviation over √n, combined as independent); None without items."""
    tasks = [values for values in by_task.values() if values]
    if not tasks:
        return None
    means = [sum(v) / len(v) for v in tasks]
    if any(len(v) < 2 for v in tasks):
        return sum(means) / len(means), None
    variances = [
        sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v)
        for v, m in zip(tasks, means, strict=True)
    ]
    return sum(means) / len(means), math.sqrt(sum(variances)) / len(tasks)


def _mean_items(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each held-out item's score averaged over the runs, over the items every run scored."""
    runs = [r.get("heldout_items") or {} for r in rows]
    tasks = sorted(set.intersection(*(set(items) for items in runs))) if runs else []
    mean: dict[str, dict[str, float]] = {}
    for task in tasks:
        ids = sorted(set.intersection(*(set(items[task]) for items in runs)))
        mean[task] = {i: sum(items[task][i] for items in runs) / len(runs) for i in ids}
    return mean


def heldout_mean(row: Rows) -> tuple[float, float | None] | None:
    """A method's held-out average over its tasks' items (``heldout_items``; with a list of its
    seeds' rows, each item's mean over them) with its standard error; None when it ran no
    held-out task."""
    items = _mean_items(_seeds(row))
    return _mean_se({task: list(scores.values()) for task, scores in items.items()})


def paired_heldout_difference(row: Rows, other: Rows) -> tuple[float, float | None] | None:
    """Held-out average(row) − held-out average(other) over the items both scored, task by task,
    and its standard error from the per-item differences (lists: pooled over seeds, each item's
    score first averaged over them); None when they share no item."""
    mine, theirs = _mean_items(_seeds(row)), _mean_items(_seeds(other))
    differences = {
        task: [mine[task][i] - theirs[task][i] for i in sorted(set(mine[task]) & set(theirs[task]))]
        for task in sorted(set(mine) & set(theirs))
    }
    return _mean_se(differences)


def frontier_methods(
    rows: list[dict[str, Any]], split: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], float] | None:
    """The fixed-alpha and the adaptive MixSD rows that have a ΔL_ref, and SFT's training
    accuracy; None when the run has no training frontier (no adaptive method, no fixed alpha
    or no SFT accuracy)."""
    mixsd = [r for r in rows if r["method"] == "mixsd" and r["refloss"] is not None]
    adaptive = [r for r in mixsd if r.get("rollout_options")]
    fixed = [r for r in mixsd if not r.get("rollout_options")]
    sft = next((r for r in rows if r["method"] == "sft"), None)
    sft_accuracy = training_accuracy(sft, split) if sft else None
    if not adaptive or not fixed or sft_accuracy is None:
        return None
    return fixed, adaptive, sft_accuracy


def frontier_lines(
    rows: list[dict[str, Any]], split: str | None, image: list[str] | None = None
) -> list[str]:
    """The report's section (with ``image``'s lines under its heading), or nothing without an
    adaptive MixSD method and a fixed one."""
    found = frontier_methods(rows, split)
    if found is None:
        return []
    fixed, adaptive, sft_accuracy = found
    points = {r["label"]: (training_accuracy(r, split), r["refloss"]) for r in fixed + adaptive}
    # The fixed alphas that have an accuracy: the hull's points and the paired rivals.
    accuracy_of = {r["label"]: a for r in fixed if (a := points[r["label"]][0]) is not None}
    rated = [r for r in fixed if r["label"] in accuracy_of]
    fixed_points: list[Point] = [
        (accuracy_of[r["label"]], float(points[r["label"]][1])) for r in rated
    ]
    heldout = any(heldout_mean(r) for r in fixed + adaptive)
    lines = [
        "## Adaptive mixing against the fixed alphas (training frontier)",
        "",
        *(image or []),
        f"Each MixSD method after training: accuracy over every trained fact and ΔL_ref. Fixed "
        f"alphas: {', '.join(r['label'] for r in fixed)}. An adaptive method beats them when it "
        f"keeps ≥ {SFT_SHARE:.0%} of SFT's accuracy ({sft_accuracy * 100:.1f}%) with ΔL_ref below "
        "every fixed alpha that is as accurate, and lies above their hull when no mix of two "
        "fixed alphas that accurate forgets as little. The ΔL_ref difference is its ΔL_ref minus "
        "that of each fixed alpha as accurate (else of the most accurate one), paired over the "
        "reference prompts (± its standard error)."
        + (
            " The held-out columns give the held-out average in points (± its standard error) "
            "and the same differences, paired over the held-out problems (higher is better)."
            if heldout
            else ""
        ),
        "",
    ]
    header = [
        "method", "accuracy", "ΔL_ref", "≥ 0.95 × SFT", "fixed alphas as accurate",
        "ΔL_ref below them", "hull ΔL_ref there", "above the hull",
        "ΔL_ref − fixed alpha's (paired)",
    ]  # fmt: skip
    if heldout:
        header += ["held-out", "held-out − fixed alpha's (paired)"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def table_row(cells: list[str], row: dict[str, Any], rivals: list[dict[str, Any]]) -> str:
        if heldout:
            versus = [(r["label"], paired_heldout_difference(row, r)) for r in rivals]
            cells += [
                _points(heldout_mean(row), signed=False),
                "; ".join(f"{_points(d)} ({label})" for label, d in versus if d) or "–",
            ]
        return "| " + " | ".join(cells) + " |"

    for row in fixed:
        accuracy, delta = points[row["label"]]
        shown = "–" if accuracy is None else f"{accuracy * 100:.1f}"
        blank = [""] * 6
        lines.append(
            table_row([f"{row['label']} (fixed)", shown, f"{delta:+.4f}", *blank], row, [])
        )
    # The strongest rival when none is as accurate: the most accurate fixed alpha, the one
    # forgetting least on a tie.
    rival = max(
        rated, key=lambda r: (accuracy_of[r["label"]], -points[r["label"]][1]), default=None
    )
    for row in adaptive:
        accuracy, delta = points[row["label"]]
        if accuracy is None:
            lines.append(table_row([row["label"], "–", f"{delta:+.4f}", *[""] * 6], row, []))
            continue
        test = beats_fixed_alphas((accuracy, delta), fixed_points, sft_accuracy)
        hull = "none reaches it" if test["hull"] is None else f"{test['hull']:+.4f}"
        rivals = [r for r in rated if accuracy_of[r["label"]] >= accuracy] or (
            [] if rival is None else [rival]
        )
        paired = [(r["label"], paired_difference(row, r)) for r in rivals]
        versus = "; ".join(f"{d[0]:+.4f} ± {d[1]:.4f} ({label})" for label, d in paired if d)
        cells = [
            row["label"],
            f"{accuracy * 100:.1f}",
            f"{delta:+.4f}",
            _yes(test["keeps_accuracy"]),
            str(test["reaching"]),
            _yes(test["below_reaching"]) if test["reaching"] else "n/a",
            hull,
            _yes(test["above_hull"]),
            versus or "–",
        ]
        lines.append(table_row(cells, row, rivals))
    return [*lines, ""]


def _points(value: tuple[float, float | None] | None, signed: bool = True) -> str:
    """A held-out difference of shares (or, not ``signed``, a share) in points, with its
    standard error."""
    if value is None:
        return "–"
    mean, se = value
    shown = f"{mean * 100:+.1f}" if signed else f"{mean * 100:.1f}"
    return shown + ("" if se is None else f" ± {se * 100:.1f}")


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"
