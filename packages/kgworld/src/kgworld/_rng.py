"""Seeded random streams that never depend on ``hash()`` or ``PYTHONHASHSEED``.

Every part of the generator draws from its own stream, derived from the world seed and a
label, so adding a split or changing one size does not shift the draws of the others.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def derived_seed(seed: int, *labels: object) -> int:
    """A 64-bit seed from ``seed`` and labels, stable across processes and platforms."""
    text = "\x1f".join([str(seed), *(str(label) for label in labels)])
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def derived_rng(seed: int, *labels: object) -> random.Random:
    """A ``random.Random`` seeded by :func:`derived_seed`."""
    return random.Random(derived_seed(seed, *labels))


def pick(rng: random.Random, options: Sequence[T]) -> T:
    """A uniform choice, ~3x faster than ``rng.choice`` (which loops on ``getrandbits``).

    Generators call this millions of times; the float-based index is uniform to within 2**-53.
    """
    return options[int(rng.random() * len(options))]
