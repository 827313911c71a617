"""Seeds and mixing masks that never depend on ``hash()``, PYTHONHASHSEED or batch layout.

Kept free of torch so that masks can be drawn (and checked) without loading a model.
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["draw_mask", "stable_seed"]


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from ``parts``, the same in every process and on every platform."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def draw_mask(alpha: float, seed: int, example_id: str, attempt: int, length: int) -> list[int]:
    """Bernoulli(alpha) over ``length`` positions, 1 = take the naive token.

    Seeded by (seed, example id, attempt) alone, so a row's mask never depends on which other
    rows share its batch or in what order. ``random()`` lies in [0, 1): alpha 0 gives all zeros
    (pure expert), alpha 1 all ones (pure naive). A longer mask extends a shorter one.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    rng = random.Random(stable_seed("mask", seed, example_id, attempt))
    return [int(rng.random() < alpha) for _ in range(length)]
