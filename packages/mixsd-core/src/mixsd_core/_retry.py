"""Verify and redraw: MixSD's retry policy as a pure function (no model, no files).

A mixed target must still state the right answer. Every example of a pool is decoded once with
the mask drawn from (seed, example id, attempt 0); a target the verifier rejects is redrawn with
a fresh mask (attempt 1, 2, ...) until it passes or ``max_retries`` redraws are spent, and then
the example is dropped. The pool's failed rows are redrawn *together*, in rounds: each round
decodes the pending rows in batches of ``batch_size``, so retry batches stay full (on a CPU a
decode step costs nearly the same for 2 rows as for 8). Masks depend on (seed, id, attempt)
only, so an example's targets never depend on the other rows of its batch.

Parallel redraws (``parallel_redraws``): a round whose last batch has spare rows fills them with
the pending examples' next fresh draws (attempt k + 1, k + 2, ...). Their masks are already
fixed by (seed, id, draw), so the first attempt that verifies is the one a round per redraw would
have kept: the same outcomes, in fewer rounds. Near the end of a pool, where one or two hard
examples would otherwise be redrawn one round at a time, this turns their ``max_retries``
sequential decodes into a few full batches; the redraws decoded after the one kept are the
price. Repair needs the failed output, so a pool with repair never decodes ahead.

Repair (``repair``, ``repair_limit``): a failed attempt may instead be re-decoded with one more
position forced to the expert, keeping the mask and the continuation before that position
(``Attempt.forced``, ``Attempt.resume``); each mask draw gets at most ``repair_limit`` flips,
then the next failure draws a fresh mask. Every decode, full or repaired, is one attempt of the
``max_retries + 1`` allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from mixsd_core._masks import draw_mask

__all__ = ["Attempt", "Outcome", "decode_with_retries"]

T = TypeVar("T")


@dataclass(frozen=True)
class Attempt:
    """One try at an example's target."""

    index: int  # the example's position in the pool
    example_id: str
    attempt: int  # 0 = first try; every decode (a redraw or a repair) counts one
    mask: list[int]  # per step: 1 = take the naive token, 0 = the expert's
    draw: int = 0  # the mask's draw index (seeded by seed, id, draw); = attempt without repair
    forced: tuple[int, ...] = ()  # positions repair forced to the expert, in flip order
    resume: Any = None  # what the decoder keeps from the repaired attempt (None: decode all)


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
    mask_matters: bool = True,
    repair: Callable[[Attempt, T], tuple[int, Any] | None] | None = None,
    repair_limit: int = 0,
    parallel_redraws: bool = False,
    on_round: Callable[[int], None] | None = None,
) -> list[Outcome[T]]:
    """One pool of examples through decode, verify and redraw: one outcome per example, in order.

    ``decode(attempts)`` returns one output per attempt (at most ``batch_size`` attempts a
    call); ``verify(attempt, output)`` says whether the output passes, and ``None`` keeps every
    first attempt unverified. ``greedy`` says that ``decode`` is a function of the mask alone:
    then with alpha 0 or 1 every redraw draws the same mask and would repeat the failed target,
    so a failed example is not redrawn; likewise when ``mask_matters`` is False (a policy that
    ignores the mask). ``repair(attempt, output)`` gives ``(position, resume)`` to re-decode a
    failed attempt with that position forced to the expert, or None; it is asked while the
    draw has used fewer than ``repair_limit`` flips. ``parallel_redraws`` fills each round's
    spare batch rows with the pending examples' next redraws (same outcomes; module docstring).
    ``on_round(n)`` reports the examples finished in each round (progress).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    redraws = not (greedy and (alpha in (0.0, 1.0) or not mask_matters))

    def fresh(i: int, attempt: int, draw: int) -> Attempt:
        mask = draw_mask(alpha, seed, example_ids[i], draw, mask_length)
        return Attempt(i, example_ids[i], attempt, mask, draw)

    def redraw(after: Attempt) -> Attempt:
        """The example's next attempt with a fresh mask."""
        return fresh(after.index, after.attempt + 1, after.draw + 1)

    ahead = parallel_redraws and redraws and verify is not None and repair is None
    outcomes: dict[int, Outcome[T]] = {}
    attempts = [fresh(i, 0, 0) for i in range(len(example_ids))]
    while attempts:
        # Each pending example's attempts of this round, in attempt order: its pending one, then
        # (decoding ahead) the redraws that fill the last batch's spare rows, round-robin.
        tries = {a.index: [a] for a in attempts}
        spare = -len(attempts) % batch_size if ahead else 0
        while spare:
            added = spare
            for queue in tries.values():
                last = queue[-1]
                if spare and last.attempt < max_retries:
                    queue.append(redraw(last))
                    spare -= 1
            if spare == added:  # every example is at its last attempt
                break
        batch = [a for queue in tries.values() for a in queue]
        outputs: list[T] = []
        for start in range(0, len(batch), batch_size):
            outputs += decode(batch[start : start + batch_size])
        decoded = iter(zip(batch, outputs, strict=True))
        retry = []
        for queue in tries.values():
            results = [next(decoded) for _ in queue]
            for attempt, output in results:
                if verify is None:
                    outcomes[attempt.index] = Outcome(attempt, output, None)
                elif verify(attempt, output):
                    outcomes[attempt.index] = Outcome(attempt, output, True)
                else:
                    continue
                break
            else:  # every attempt of the round failed: the last one decides what comes next
                attempt, output = results[-1]
                if attempt.attempt < max_retries and (
                    again := _next_attempt(
                        attempt, output, redraw if redraws else None, repair, repair_limit
                    )
                ):
                    retry.append(again)
                else:
                    outcomes[attempt.index] = Outcome(attempt, output, False)
        if on_round is not None:
            on_round(len(attempts) - len(retry))
        attempts = retry
    return [outcomes[i] for i in range(len(example_ids))]


def _next_attempt(
    failed: Attempt,
    output: T,
    redraw: Callable[[Attempt], Attempt] | None,
    repair: Callable[[Attempt, T], tuple[int, Any] | None] | None,
    repair_limit: int,
) -> Attempt | None:
    """After a failure: a repaired attempt, a fresh draw (``redraw``, None where a redraw
    cannot differ), or None (nothing new to try)."""
    if repair is not None and len(failed.forced) < repair_limit:
        flip = repair(failed, output)
        if flip is not None:
            position, resume = flip
            forced = (*failed.forced, position)
            return replace(failed, attempt=failed.attempt + 1, forced=forced, resume=resume)
    return redraw(failed) if redraw is not None else None
