"""Pearson and Spearman correlation on plain lists (no numpy/scipy needed for a few points)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["pearson", "rankdata", "spearman"]


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson r; ``None`` when it is undefined (fewer than 2 points, or a constant series)."""
    if len(x) != len(y):
        raise ValueError(f"pearson: lengths differ ({len(x)} vs {len(y)})")
    n = len(x)
    if n < 2:
        return None
    mx, my = math.fsum(x) / n, math.fsum(y) / n
    sxy = math.fsum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = math.fsum((a - mx) ** 2 for a in x)
    syy = math.fsum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    # Clamp: rounding can push a perfect correlation a hair past 1.
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def rankdata(values: Sequence[float]) -> list[float]:
    """1-based ranks; tied values share the average of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman r: Pearson r of the (tie-averaged) ranks, the definition that stays right with ties."""
    if len(x) != len(y):
        raise ValueError(f"spearman: lengths differ ({len(x)} vs {len(y)})")
    return pearson(rankdata(x), rankdata(y))
