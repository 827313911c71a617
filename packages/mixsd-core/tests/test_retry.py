"""The verify/redraw loop on its own: a toy decoder and verifier, no model."""

from __future__ import annotations

from typing import Any

import pytest

from mixsd_core import draw_mask
from mixsd_core._retry import Attempt, decode_with_retries

IDS = [f"ex-{i}" for i in range(7)]
LENGTH = 16


class Toy:
    """Decodes an attempt to (id, attempt, mask); example i passes on attempt ``passes_on[i]``."""

    def __init__(self, passes_on: dict[str, int]) -> None:
        self.passes_on = passes_on
        self.batches: list[list[tuple[str, int]]] = []
        self.verified: list[tuple[str, int]] = []

    def decode(self, attempts: list[Attempt]) -> list[tuple[str, int, list[int]]]:
        self.batches.append([(a.example_id, a.attempt) for a in attempts])
        return [(a.example_id, a.attempt, a.mask) for a in attempts]

    def verify(self, attempt: Attempt, output: tuple[str, int, list[int]]) -> bool:
        assert output == (attempt.example_id, attempt.attempt, attempt.mask)
        self.verified.append((attempt.example_id, attempt.attempt))
        return attempt.attempt >= self.passes_on.get(attempt.example_id, 99)


def _run(toy: Toy, ids: list[str] = IDS, **overrides: Any) -> list[Any]:
    settings: dict[str, Any] = dict(
        alpha=0.5, seed=3, mask_length=LENGTH, max_retries=2, batch_size=3
    )
    return decode_with_retries(ids, toy.decode, toy.verify, **{**settings, **overrides})


def test_redraws_until_verified_then_drops() -> None:
    # ex-0, ex-3 pass at once, ex-1 on its first redraw, ex-2 on its second, the rest never.
    toy = Toy({"ex-0": 0, "ex-1": 1, "ex-2": 2, "ex-3": 0})
    outcomes = _run(toy)
    assert [o.attempt.example_id for o in outcomes] == IDS
    assert [o.attempt.attempt for o in outcomes] == [0, 1, 2, 0, 2, 2, 2]
    assert [o.verified for o in outcomes] == [True, True, True, True, False, False, False]
    assert [o.kept for o in outcomes] == [True] * 4 + [False] * 3
    for o in outcomes:  # each attempt's mask is drawn from (seed, id, attempt) alone
        assert o.attempt.mask == draw_mask(0.5, 3, o.attempt.example_id, o.attempt.attempt, LENGTH)
        assert o.output == (o.attempt.example_id, o.attempt.attempt, o.attempt.mask)
    # Rounds pool the failures in full batches: 7 first tries, 5 redraws, then 4.
    assert [len(b) for b in toy.batches] == [3, 3, 1, 3, 2, 3, 1]
    assert toy.batches[3] == [("ex-1", 1), ("ex-2", 1), ("ex-4", 1)]
    assert len(toy.verified) == 7 + 5 + 4


def test_redrawn_masks_differ() -> None:
    outcomes = _run(Toy({}), max_retries=3)
    masks = [draw_mask(0.5, 3, "ex-0", a, LENGTH) for a in range(4)]
    assert len({tuple(m) for m in masks}) == 4
    assert outcomes[0].attempt.mask == masks[3]


def test_results_do_not_depend_on_pool_order_or_batch_size() -> None:
    passes = {"ex-0": 1, "ex-2": 0, "ex-5": 2, "ex-6": 1}

    def by_id(outcomes: list[Any]) -> dict[str, Any]:
        return {o.attempt.example_id: (o.attempt.attempt, o.output, o.verified) for o in outcomes}

    forward = by_id(_run(Toy(passes)))
    assert by_id(_run(Toy(passes), ids=IDS[::-1], batch_size=2)) == forward
    assert sum(v[2] is True for v in forward.values()) == 4


def test_without_verifier_every_first_attempt_is_kept() -> None:
    toy = Toy({})
    outcomes = decode_with_retries(
        IDS, toy.decode, None, alpha=0.5, seed=0, mask_length=LENGTH, max_retries=5, batch_size=4
    )
    assert [(o.attempt.attempt, o.verified, o.kept) for o in outcomes] == [(0, None, True)] * 7
    assert [len(b) for b in toy.batches] == [4, 3]


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_greedy_pure_masks_drop_at_once(alpha: float) -> None:
    # One possible mask: a greedy redraw would repeat the failed target exactly.
    toy = Toy({"ex-0": 1})
    outcomes = _run(toy, alpha=alpha)
    assert [o.kept for o in outcomes] == [False] * 7
    assert len(toy.batches) == 3  # the first round only
    sampled = Toy({"ex-0": 1})
    assert _run(sampled, alpha=alpha, greedy=False)[0].kept  # sampling may pass on a redraw


def test_progress_counts_finished_examples_per_round() -> None:
    rounds: list[int] = []
    _run(Toy({"ex-0": 0, "ex-1": 1}), on_round=rounds.append)
    assert rounds == [1, 1, 5]
    assert sum(rounds) == len(IDS)


def test_empty_pool_and_bad_batch_size() -> None:
    assert _run(Toy({}), ids=[]) == []
    with pytest.raises(ValueError, match="batch_size"):
        _run(Toy({}), batch_size=0)


class RepairToy(Toy):
    """ex-0 passes once two positions are forced, ex-1 on its second draw, the rest never; the
    repair flips position 10 - (flips so far) while any is left (ex-2 offers none)."""

    def verify(self, attempt: Attempt, output: Any) -> bool:
        self.verified.append((attempt.example_id, attempt.attempt))
        if attempt.example_id == "ex-0":
            return len(attempt.forced) == 2
        return attempt.example_id == "ex-1" and attempt.draw == 2

    def repair(self, attempt: Attempt, output: Any) -> tuple[int, str] | None:
        if attempt.example_id == "ex-2":
            return None
        return 10 - len(attempt.forced), f"kept {attempt.attempt}"


def _run_repair(toy: RepairToy, **overrides: Any) -> list[Any]:
    settings: dict[str, Any] = dict(repair=toy.repair, repair_limit=2, max_retries=6)
    return _run(toy, ids=IDS[:4], **{**settings, **overrides})


def test_repair_flips_then_redraws() -> None:
    toy = RepairToy({})
    outcomes = _run_repair(toy)
    ex0, ex1, ex2, ex3 = (o.attempt for o in outcomes)
    # ex-0: first decode, then two repairs of draw 0 (same mask), which pass
    assert (ex0.attempt, ex0.draw, ex0.forced, ex0.resume) == (2, 0, (10, 9), "kept 1")
    assert ex0.mask == draw_mask(0.5, 3, "ex-0", 0, LENGTH) and outcomes[0].verified
    # ex-1: draw 0 + 2 repairs, draw 1 + 2 repairs, then draw 2 passes at once
    assert (ex1.attempt, ex1.draw, ex1.forced, ex1.resume) == (6, 2, (), None)
    assert ex1.mask == draw_mask(0.5, 3, "ex-1", 2, LENGTH) and outcomes[1].verified
    # ex-2 has nothing to repair: plain redraws, draw = attempt
    assert (ex2.attempt, ex2.draw, ex2.forced) == (6, 6, ()) and not outcomes[2].kept
    assert (ex3.attempt, ex3.draw) == (6, 2) and not outcomes[3].kept  # draws 0 0 0 1 1 1 2


def test_repair_of_a_mask_free_policy_never_redraws() -> None:
    """exchange / guard ignore the mask: after the repairs there is nothing new to try."""
    toy = RepairToy({})
    outcomes = _run_repair(toy, mask_matters=False)
    assert outcomes[0].verified and outcomes[0].attempt.attempt == 2
    assert [(o.attempt.attempt, o.kept) for o in outcomes[1:]] == [
        (2, False),
        (0, False),
        (2, False),
    ]
    # without repair a mask-free greedy policy gets one attempt, as alpha 0 / 1 do
    plain = _run(Toy({"ex-0": 1}), mask_matters=False)
    assert [o.attempt.attempt for o in plain] == [0] * 7


def test_repair_counts_against_max_retries() -> None:
    outcomes = _run_repair(RepairToy({}), max_retries=1)
    assert [(o.attempt.attempt, o.attempt.forced, o.kept) for o in outcomes] == [
        (1, (10,), False),
        (1, (10,), False),
        (1, (), False),
        (1, (10,), False),
    ]


@pytest.mark.parametrize("batch_size", [1, 2, 3, 4, 8, 32])
@pytest.mark.parametrize("max_retries", [0, 1, 4])
def test_parallel_redraws_keep_the_sequential_outcomes(batch_size: int, max_retries: int) -> None:
    """Decoding ahead changes how rounds are batched, never which attempt is kept."""
    passes = {"ex-0": 3, "ex-1": 0, "ex-2": 1, "ex-4": 4, "ex-6": 2}
    settings: dict[str, Any] = dict(batch_size=batch_size, max_retries=max_retries)
    sequential, ahead = Toy(passes), Toy(passes)
    expected = _run(sequential, **settings)
    outcomes = _run(ahead, parallel_redraws=True, **settings)
    assert [(o.attempt, o.output, o.verified) for o in outcomes] == [
        (o.attempt, o.output, o.verified) for o in expected
    ]
    # The verifier sees the same attempts, never one after an example's kept attempt.
    assert sorted(ahead.verified) == sorted(sequential.verified)
    # No batch is over-filled, and filling the spare rows never costs an extra batch.
    assert all(len(b) <= batch_size for b in ahead.batches)
    assert len(ahead.batches) <= len(sequential.batches)


def test_parallel_redraws_fill_the_spare_rows_round_robin() -> None:
    # 7 examples in batches of 4: the first round's second batch has a spare row, which takes
    # ex-0's first redraw; ex-0 passes there, so round 2 never redraws it.
    toy = Toy({"ex-0": 1, "ex-1": 0, "ex-2": 0, "ex-3": 0, "ex-4": 0, "ex-5": 0, "ex-6": 0})
    outcomes = _run(toy, batch_size=4, max_retries=5, parallel_redraws=True)
    assert toy.batches == [
        [("ex-0", 0), ("ex-0", 1), ("ex-1", 0), ("ex-2", 0)],
        [("ex-3", 0), ("ex-4", 0), ("ex-5", 0), ("ex-6", 0)],
    ]
    assert outcomes[0].attempt.attempt == 1 and outcomes[0].verified
    # Two hard examples, 16 attempts each: one round of 8 per batch instead of 16 rounds of 2.
    hard = Toy({})
    outcomes = _run(hard, ids=IDS[:2], batch_size=16, max_retries=15, parallel_redraws=True)
    assert [len(b) for b in hard.batches] == [16, 16]
    assert hard.batches[0][:3] == [("ex-0", 0), ("ex-0", 1), ("ex-0", 2)]
    assert [(o.attempt.attempt, o.kept) for o in outcomes] == [(15, False), (15, False)]
    assert len(hard.verified) == 32


def test_no_decoding_ahead_where_a_redraw_cannot_differ_or_depends_on_the_output() -> None:
    for overrides in (
        dict(alpha=0.0),  # greedy with one possible mask: no redraws at all
        dict(mask_matters=False),
    ):
        toy = Toy({"ex-0": 1})
        _run(toy, parallel_redraws=True, **overrides)
        assert [len(b) for b in toy.batches] == [3, 3, 1]
    # Repair re-decodes from the failed output: it cannot be decoded ahead.
    toy = RepairToy({})
    assert _run_repair(toy, parallel_redraws=True) == _run_repair(RepairToy({}))
    # Without a verifier nothing is redrawn.
    plain = Toy({})
    decode_with_retries(
        IDS,
        plain.decode,
        None,
        alpha=0.5,
        seed=0,
        mask_length=LENGTH,
        max_retries=5,
        batch_size=4,
        parallel_redraws=True,
    )
    assert [len(b) for b in plain.batches] == [4, 3]
