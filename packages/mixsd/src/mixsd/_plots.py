"""The report's PNGs. Bare ``matplotlib.figure.Figure`` objects on the Agg canvas: no display,
no pyplot state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from mixsd._report import training_accuracy
from mixsd._training_frontier import SFT_SHARE, frontier_methods, heldout_mean, hull_delta_at

__all__ = [
    "label_axes",
    "pareto_plot",
    "plot_nll_cdf",
    "plot_taxonomy",
    "save_png",
    "training_frontier_plot",
]

# One colour per method family, so alphas of the same method read as one series.
COLORS = {
    "base": "black",
    "sft": "tab:red",
    "mixsd": "tab:blue",
    "mixsd-kl": "tab:cyan",
    "opsd": "tab:orange",
    "opsd-nll": "tab:brown",
}


def label_axes(ax: Any, xlabel: str, ylabel: str, title: str, legend: str | None = None) -> None:
    """Axis labels, title, a light grid and (at ``legend``'s location) the legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend is not None:
        ax.legend(fontsize=8, loc=legend)


def save_png(
    fig: Figure, path: Path, rect: tuple[float, float, float, float] | None = None
) -> Path:
    """Lay the figure out (within ``rect``, a share of it, where given) and write the PNG."""
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=120, metadata={"Software": None})  # no version stamp: stable bytes
    return path


def pareto_plot(rows: list[dict[str, Any]], split: str | None, path: Path) -> Path:
    """Memorisation (training accuracy on ``split``) against retention: held-out average and
    ΔL_ref."""
    fig = Figure(figsize=(11, 4.5))
    panels = (
        ("heldout_average", "held-out average accuracy (%)", 100.0, "higher is better"),
        ("refloss", "reference-loss increase ΔL_ref (nats/token)", 1.0, "lower is better"),
    )
    for index, (key, ylabel, scale, hint) in enumerate(panels, 1):
        ax = fig.add_subplot(1, 2, index)
        for row in rows:
            x, y = training_accuracy(row, split), row[key]
            if x is None or y is None:
                continue
            ax.scatter(
                [x * 100],
                [y * scale],
                s=60,
                color=COLORS.get(row["method"], "gray"),
                marker="D" if row.get("rollout_options") else "o",  # adaptive mixing: a diamond
                zorder=3,
            )
            ax.annotate(
                row["label"], (x * 100, y * scale), textcoords="offset points", xytext=(5, 5)
            )
        if not ax.collections:
            ax.text(0.5, 0.5, "not measured in this run", ha="center", transform=ax.transAxes)
        ax.set_xlim(-5, 105)  # accuracies: the whole range, so runs compare at a glance
        label_axes(ax, "training accuracy (%)", ylabel, f"memorisation vs retention ({hint})")
    return save_png(fig, path)


def _frontier_points(
    ax: Any,
    groups: list[tuple[list[dict[str, Any]], str, str]],
    split: str | None,
    value: Any,
) -> list[float]:
    """Each row of each (rows, marker, colour) group as a point with error bars at (training
    accuracy, ``value(row)`` = (y, its standard error or None), or None to skip); returns the
    accuracies drawn."""
    points: list[tuple[float, float, float | None, str, str, str]] = []
    for rows, marker, color in groups:
        for row in rows:
            x, y = training_accuracy(row, split), value(row)
            if x is not None and y is not None:
                points.append((x, y[0], y[1], row["label"], marker, color))
    for x, y, se, _, marker, color in points:
        ax.errorbar([x * 100], [y], yerr=None if se is None else [se], fmt=marker,
                    markersize=7, capsize=3, color=color, zorder=3)  # fmt: skip
    # Labels: at one accuracy (most methods learn every fact), in order of height, they alternate
    # right and left of the points, so neighbours stay readable; exact ties stack.
    for x in sorted({p[0] for p in points}):
        column = sorted((p for p in points if p[0] == x), key=lambda p: -p[1])
        for k, (_, y, _, label, _, _) in enumerate(column):
            ties = sum(q[1] == y for q in column[:k])
            left = k % 2 == 1
            ax.annotate(label, (x * 100, y), textcoords="offset points",
                        xytext=(-6 if left else 6, -4 - 12 * ties),
                        ha="right" if left else "left")  # fmt: skip
    drawn = [p[0] for p in points]
    return drawn


def training_frontier_plot(
    rows: list[dict[str, Any]], split: str | None, path: Path
) -> Path | None:
    """Issue 18's training frontier: ΔL_ref (± its standard error) against training accuracy for
    the fixed alphas (circles), the hull of their two-at-a-time mixes (dashed) and the adaptive
    methods (diamonds), with the 0.95 × SFT accuracy bar; beside it, when the run measured
    held-out tasks, their average (± its standard error) against the same accuracy, with the
    base model's as a line. None without an adaptive method."""
    found = frontier_methods(rows, split)
    if found is None:
        return None
    fixed, adaptive, sft_accuracy = found
    groups = [(fixed, "o", "tab:blue"), (adaptive, "D", "tab:green")]
    with_heldout = any(heldout_mean(r) for r in fixed + adaptive)
    fig = Figure(figsize=(13, 4.5) if with_heldout else (7, 4.5))
    ax = fig.add_subplot(1, 2 if with_heldout else 1, 1)
    drawn = _frontier_points(ax, groups, split, lambda r: (r["refloss"], r.get("refloss_se")))
    # The accuracies the points span (with a margin), not 0-100: the frontier is near the top.
    low = max(0.0, min([*drawn, SFT_SHARE * sft_accuracy]) - 0.1)
    fixed_points = [
        (a, float(r["refloss"])) for r in fixed if (a := training_accuracy(r, split)) is not None
    ]
    if fixed_points:
        top = max(accuracy for accuracy, _ in fixed_points)
        grid = [low + (top - low) * k / 200 for k in range(201)]
        hull = [(a * 100, hull_delta_at(a, fixed_points)) for a in grid]
        ax.plot(
            [a for a, d in hull if d is not None],
            [d for _, d in hull if d is not None],
            "--",
            color="tab:blue",
            alpha=0.6,
            label="fixed-alpha hull (mixes of two)",
        )
    axes = [ax]
    if with_heldout:
        right = fig.add_subplot(1, 2, 2)
        axes.append(right)

        def in_points(row: dict[str, Any]) -> tuple[float, float | None] | None:
            found = heldout_mean(row)
            return None if found is None else (found[0] * 100, found[1] and found[1] * 100)

        _frontier_points(right, groups, split, in_points)
        base = next((in_points(r) for r in rows if r["method"] == "base"), None)
        if base is not None:
            right.axhline(base[0], color="black", linestyle="-.", label="base model")
        label_axes(
            right,
            "training accuracy over every trained fact (%)",
            "held-out average accuracy (%)",
            "Held-out retention (upper right wins)",
        )
    for panel in axes:
        panel.axvline(
            SFT_SHARE * sft_accuracy * 100,
            color="tab:red",
            linestyle=":",
            label=f"{SFT_SHARE:.2f} × SFT's accuracy",
        )
        panel.set_xlim(low * 100 - 1, 102)
        panel.legend(fontsize=8, loc="upper left")
    label_axes(
        ax,
        "training accuracy over every trained fact (%)",
        "reference-loss increase ΔL_ref (nats/token)",
        "Training frontier: adaptive mixing against fixed alphas (lower right wins)",
    )
    return save_png(fig, path)


def plot_nll_cdf(nll: dict[str, dict[str, Any]], path: Path) -> Path:
    """CDF of the per-token NLL of each method's targets under the base model."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for name, summary in nll.items():
        share = summary["share_above"].get("8")
        label = f"{name} ({share * 100:.1f}% > 8)" if share is not None else name
        family = "sft" if name == "sft" else "mixsd"
        style = "-" if name == "sft" else "--"
        ax.plot(
            summary["cdf"]["nll"],
            summary["cdf"]["probability"],
            style,
            color=COLORS[family] if name == "sft" else None,
            label=label,
        )
    ax.axvline(8.0, color="gray", linestyle=":", label="NLL = 8")
    label_axes(
        ax,
        "per-token NLL under the base model (nats)",
        "cumulative share of target tokens",
        "How probable are the training targets to the base model?",
        legend="lower right",
    )
    return save_png(fig, path)


def plot_taxonomy(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Held-out failures per method, split by the error taxonomy's buckets."""
    buckets = [
        b
        for b in ("format", "leakage", "collapse", "genuine")
        if any(b in row["taxonomy"] for row in rows)
    ]
    if not buckets:
        return None
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(rows)
    for index, row in enumerate(rows):
        xs = [b + index * width for b in range(len(buckets))]
        counts = [row["taxonomy"].get(b, 0) for b in buckets]
        ax.bar(xs, counts, width, label=row["label"])
    ax.set_xticks([b + 0.4 - width / 2 for b in range(len(buckets))], buckets)
    ax.set_ylabel("failed held-out samples")
    ax.set_title("Why held-out answers fail, per method")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return save_png(fig, path)
