"""The report's PNG: ρ and ‖Δθ‖² against forgetting (or, without forgetting, per layer).

Figures are bare ``matplotlib.figure.Figure`` objects, drawn by the Agg canvas: no display, no
pyplot state shared with the caller. This module is imported only when a plot is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from fishertools._forgetting import DELTA_NLL, MEASURE_NAMES
from mixsd_base import atomic_path

__all__ = ["plot_report"]

_AXES = (("rho", "alignment ρ = (ΣFΔθ² / ‖Δθ‖²) / mean(F)"), ("raw_sq", "raw displacement ‖Δθ‖²"))


def _short(key: str) -> str:
    """``model.layers.3`` -> ``L3``; ``model.embed_tokens`` -> ``embed_tokens``."""
    tail = key.rsplit(".", 1)[-1]
    return f"L{tail}" if tail.isdigit() else tail


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def _legend_below(ax: Any, offset: float = -0.17) -> None:
    # Below the axes: a legend inside would hide points, wherever "best" puts it.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, offset), fontsize=8, frameon=False)


def _scatter(
    ax: Any, rows: list[dict[str, Any]], metric: str, measure: str, stats: dict[str, Any]
) -> None:
    points = [
        (r["totals"][metric], r["forgetting"][measure], r["name"])
        for r in rows
        if measure in r["forgetting"] and r["totals"][metric] is not None
    ]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    label = (
        f"checkpoints (n={stats['n']}): Pearson r = {_fmt(stats['pearson'])}, "
        f"Spearman r = {_fmt(stats['spearman'])}"
    )
    ax.scatter(xs, ys, s=40, color="tab:blue", label=label, zorder=3)
    if stats["pearson"] is not None:  # least-squares line, the picture of Pearson r
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mx) ** 2 for x in xs
        )
        lo, hi = min(xs), max(xs)
        ax.plot(
            [lo, hi],
            [my + slope * (lo - mx), my + slope * (hi - mx)],
            "--",
            color="tab:blue",
            alpha=0.5,
            label="least-squares fit",
        )
    for x, y, name in points:
        ax.annotate(
            name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color="0.3"
        )
    ax.grid(alpha=0.3)
    _legend_below(ax)


def _forgetting_figure(report: dict[str, Any]) -> Any:
    rows = report["checkpoints"]
    measures = list(report["correlations"])
    second = [r for r in rows if r["second_order"][DELTA_NLL] is not None]
    nrows = len(measures) + (1 if second else 0)
    fig = Figure(figsize=(12, 4.8 * nrows))
    axes = fig.subplots(nrows, 2, squeeze=False)
    for i, measure in enumerate(measures):
        for j, (metric, axis_label) in enumerate(_AXES):
            ax = axes[i][j]
            _scatter(ax, rows, metric, measure, report["correlations"][measure][metric])
            name = MEASURE_NAMES.get(measure, measure)
            ax.set_xlabel(axis_label)
            ax.set_ylabel(f"forgetting: {name}")
            ax.set_title(f"{axis_label.split(' =')[0]} vs {name}", fontsize=10)
    if second:
        ax = axes[-1][0]
        xs = [r["second_order"]["quadratic_prediction"] for r in second]
        ys = [r["second_order"][DELTA_NLL] for r in second]
        ax.scatter(xs, ys, s=40, color="tab:orange", label="checkpoints", zorder=3)
        for x, y, r in zip(xs, ys, second, strict=True):
            ax.annotate(
                r["name"],
                (x, y),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
                color="0.3",
            )
        top = max([*xs, *ys, 0.0])
        low = min([*xs, *ys, 0.0])
        ax.plot(
            [low, top], [low, top], "--", color="0.5", label="y = x (quadratic approximation exact)"
        )
        ax.set_xlabel("quadratic prediction ½ ΣFΔθ²")
        ax.set_ylabel(f"measured {MEASURE_NAMES[DELTA_NLL]}")
        ax.set_title("second-order check", fontsize=10)
        ax.grid(alpha=0.3)
        _legend_below(ax)
        axes[-1][1].axis("off")
    fig.suptitle(
        f"Fisher alignment vs forgetting — base {report['base'] or '(loaded model)'}", fontsize=12
    )
    return fig


def _layer_figure(report: dict[str, Any]) -> Any:
    fig = Figure(figsize=(12, 6))
    axes = fig.subplots(1, 2, squeeze=False)
    for row in report["checkpoints"]:
        keys = list(row["per_layer"])
        for ax, (metric, _) in zip(axes[0], _AXES, strict=True):
            values = [row["per_layer"][k][metric] for k in keys]
            # log axis for ‖Δθ‖²: untouched groups (0) and undefined ρ (None) become gaps
            values = [float("nan") if v is None or v == 0 else v for v in values]
            rho = row["totals"]["rho"]
            ax.plot(
                range(len(keys)),
                values,
                marker="o",
                ms=3,
                label=f"{row['name']} (total ρ={_fmt(rho)})",
            )
    for ax, (metric, axis_label) in zip(axes[0], _AXES, strict=True):
        keys = list(report["checkpoints"][0]["per_layer"])
        ax.set_xticks(range(len(keys)), [_short(k) for k in keys], rotation=60, fontsize=7)
        ax.set_xlabel("layer / module group")
        ax.set_ylabel(axis_label)
        ax.set_title(f"{axis_label.split(' =')[0]} per layer", fontsize=10)
        if metric == "raw_sq":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        _legend_below(ax, offset=-0.32)
    fig.suptitle(
        f"Displacement per layer (no forgetting given) — base {report['base'] or '(loaded model)'}",
        fontsize=12,
    )
    return fig


def plot_report(report: dict[str, Any], path: Path) -> Path:
    """Write the report's figure to ``path`` (PNG) and return it."""
    fig = _forgetting_figure(report) if report["correlations"] else _layer_figure(report)
    fig.tight_layout()
    with atomic_path(path) as tmp:  # a bare Figure renders with Agg: no pyplot, no global state
        fig.savefig(tmp, dpi=110, format="png")
    return path
