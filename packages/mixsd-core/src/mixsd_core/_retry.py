"""Verify and redraw: MixSD's retry policy as a pure function (no model, no files).

A mixed target must still state the right answer. Every example of a pool is decoded once with
the mask drawn from (seed, example id, attempt 0); a target the verifier rejects is redrawn with
a fresh mask (attempt 1, 2, ...) until it passes or ``max_retries`` redraws are spent, and then
the example is dropped. The pool's failed rows are redrawn *together*, in rounds: each round
decodes the pending rows in batches of ``batch_size``, so retry batches stay full (on a CPU a
decode step costs nearly the same for 2 rows as for 8). Masks depend on (seed, id, attempt)
only, so an example's targets never depend on the other rows of its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from mixsd_core._masks import draw_mask

__all__ = ["Attempt", "Outcome", "decode_with_retries"]

T = TypeVar("T")


@dataclass(frozen=True)
class Attempt:
    """One try at an example's target."""

    index: int  # the example's position in the pool
    example_id: str
    attempt: int  # 0 = first try
    mask: list[int]  # per step: 1 = take the naive token, 0 = the expert's


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """An example's last attempt and its output.

    ``verified`` is True when the output passed, False when every attempt failed (the example is
    dropped) and None when nothing was verified (every first attempt is kept).
    """

    attempt: Attempt
    output: T
    verified: bool | None

    @property
    def kept(self) -> bool:
        return self.verified is not False


def decode_with_retries(
    example_ids: Sequence[str],
    decode: Callable[[list[Attempt]], Sequence[T]],
    verify: Callable[[Attempt, T], bool] | None,
    *,
    alpha: float,
    seed: int,
    mask_length: int,
    max_retries: int,
    batch_size: int,
    greedy: bool = True,
    on_round: Callable[[int], None] | None = None,
) -> list[Outcome[T]]:
    """One pool of examples through decode, verify and redraw: one outcome per example, in order.

    ``decode(attempts)`` returns one output per attempt (at most ``batch_size`` attempts a
    call); ``verify(attempt, output)`` says whether the output passes, and ``None`` keeps every
    first attempt unverified. ``greedy`` says that ``decode`` is a function of the mask alone:
    then with alpha 0 or 1 every redraw draws the same mask and would repeat the failed target,
    so a failed example is dropped at once. ``on_round(n)`` reports the examples finished in
    each round (progress).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if greedy and alpha in (0.0, 1.0):
        max_retries = 0
    outcomes: dict[int, Outcome[T]] = {}
    pending = [(i, 0) for i in range(len(example_ids))]  # (example index, attempt)
    while pending:
        attempts = [
            Attempt(i, example_ids[i], a, draw_mask(alpha, seed, example_ids[i], a, mask_length))
            for i, a in pending
        ]
        outputs: list[T] = []
        for start in range(0, len(attempts), batch_size):
            outputs += decode(attempts[start : start + batch_size])
        retry = []
        for attempt, output in zip(attempts, outputs, strict=True):
            if verify is None:
                outcomes[attempt.index] = Outcome(attempt, output, None)
            elif verify(attempt, output):
                outcomes[attempt.index] = Outcome(attempt, output, True)
            elif attempt.attempt < max_retries:
                retry.append((attempt.index, attempt.attempt + 1))
            else:
                outcomes[attempt.index] = Outcome(attempt, output, False)
        if on_round is not None:
            on_round(len(attempts) - len(retry))
        pending = retry
    return [outcomes[i] for i in range(len(example_ids))]
