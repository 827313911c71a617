"""The mixing policies' rules, guard's answer span and repair's choice, on hand-made signals."""

from __future__ import annotations

import dataclasses
import math

import pytest

from mixsd_core._rollout_policy import (
    AnswerWatch,
    MixedRow,
    Mixing,
    StepSignals,
    answer_variants,
    closing_sentence,
    ending_token_ids,
    expert_writes_answer,
    failure_point,
    repair_position,
    states_answer,
    takes_naive,
)

# e = 1, n = 2: the expert prefers 1 by 1 nat; the naive prefers 2 by 3 nats; lift of e is 2.5.
S = StepSignals(1, 2, lpe_e=-0.5, lpe_n=-1.5, lpn_n=-0.2, lpn_e=-3.0)


def test_signals() -> None:
    assert S.expert_cost == pytest.approx(1.0)
    assert S.naive_gain == pytest.approx(2.8)
    assert S.lift == pytest.approx(2.5)


def test_bernoulli_and_gate() -> None:
    for bit in (0, 1):
        assert takes_naive(Mixing(), bit, S) is (bit == 1)
        # tau 0 is bernoulli, whatever the signals (even p_E(n) = 0)
        zero = StepSignals(1, 2, -0.1, -math.inf, -0.2, -3.0)
        assert takes_naive(Mixing("gate", tau=0.0), bit, zero) is (bit == 1)
    # p_E(n) / p_E(e) = e^-1 ~ 0.37
    assert takes_naive(Mixing("gate", tau=0.3), 1, S)
    assert not takes_naive(Mixing("gate", tau=0.4), 1, S)
    assert not takes_naive(Mixing("gate", tau=0.3), 0, S)
    assert not takes_naive(Mixing("gate", tau=0.3), 1, S, forced=True)


def test_exchange() -> None:
    # cost 1.0 <= kappa * gain 2.8  <=>  kappa >= 0.357
    assert takes_naive(Mixing("exchange", kappa=0.36), 0, S)
    assert not takes_naive(Mixing("exchange", kappa=0.35), 1, S)
    assert not takes_naive(Mixing("exchange", kappa=5.0), 1, S, forced=True)


def test_guard() -> None:
    guard = Mixing("guard", delta=3.0)  # lift 2.5 < 3: naive by default
    assert takes_naive(guard, 0, S)
    assert not takes_naive(Mixing("guard", delta=2.5), 1, S)  # the context lifts e enough
    assert not takes_naive(guard, 1, S, writes_answer=True)
    assert not takes_naive(guard, 1, S, naive_ends=True)  # would end before the answer
    assert takes_naive(guard, 1, S, naive_ends=True, stated=True)  # answer already stated


def test_answer_guard_adds_the_answer_terms_to_a_policy() -> None:
    for policy in (Mixing(), Mixing("gate", tau=0.3), Mixing("exchange", kappa=0.36)):
        guarded = dataclasses.replace(policy, answer_guard=True)
        assert guarded.reads_answer and not policy.reads_answer
        # elsewhere the policy decides (each of these takes n on S with bit 1)
        assert takes_naive(guarded, 1, S) and takes_naive(
            guarded, 1, S, naive_ends=True, stated=True
        )
        for terms in ({"writes_answer": True}, {"naive_ends": True}):
            assert takes_naive(policy, 1, S, **terms) and not takes_naive(guarded, 1, S, **terms)
    # the guard only ever keeps the expert: a mask bit 0 stays the expert's
    assert not takes_naive(Mixing(answer_guard=True), 0, S, stated=True)


def test_answer_watch_latches_the_statement() -> None:
    toy = [[5, 6]]
    watch = AnswerWatch(toy)
    assert not watch.stated and watch.expert_writes([1], 5) and not watch.expert_writes([1], 6)
    for tokens, stated in (([1, 5], False), ([1, 5, 6], True), ([1, 5, 6, 7], True)):
        watch.update(tokens)
        assert watch.stated is stated
    assert AnswerWatch(toy, [5, 6, 9]).stated  # a kept prefix that stated it
    # A check (the rollout's verifier) decides instead of the variants, and is not asked again
    # once it said yes.
    asked: list[list[int]] = []

    def boxed(ids: list[int]) -> bool:
        asked.append(list(ids))
        return ids[-1:] == [9]

    watch = AnswerWatch(toy, [5, 6], boxed)
    assert not watch.stated  # the variant occurs, but not in the verifier's form
    watch.update([5, 6, 9])
    watch.update([5, 6, 9, 1])
    assert watch.stated and asked == [[5, 6], [5, 6, 9]]


def test_answer_span(tiny_tokenizer) -> None:
    variants = answer_variants(tiny_tokenizer, "Ormavel Dynamics")
    assert [tiny_tokenizer.decode(v) for v in variants] == [
        "Ormavel Dynamics",
        " Ormavel Dynamics",
        "\\boxed{Ormavel Dynamics",
        " \\boxed{Ormavel Dynamics",
    ]
    v = variants[1]
    text = [7, 8, *v, 9]
    assert states_answer(text, variants) and not states_answer(text[:-2], variants)
    toy = [[5, 6, 7], [4, 6, 7]]
    assert expert_writes_answer([], 5, toy) and expert_writes_answer([1], 4, toy)
    assert expert_writes_answer([1, 5], 6, toy) and expert_writes_answer([1, 4, 6], 7, toy)
    assert not expert_writes_answer([1, 2], 6, toy) and not expert_writes_answer([5, 9], 7, toy)
    ends = ending_token_ids(tiny_tokenizer, [0])
    period = tiny_tokenizer(".", add_special_tokens=False)["input_ids"]
    word = tiny_tokenizer("answer", add_special_tokens=False)["input_ids"]
    assert 0 in ends and period[0] in ends and word[0] not in ends


def _row(tokens: list[int], sides: str, costs: dict[int, float]) -> MixedRow:
    signals = [[t, costs.get(t, 0.5), 1.0, 0.0] for t, c in enumerate(sides) if c != "."]
    return MixedRow(tokens, [int(c == "N") for c in sides], sides, signals)


def test_repair_picks_the_costliest_naive_choice_before_the_failure() -> None:
    answer = [[50, 51]]
    ends = {99}
    # the sentence ends (99) at position 3 before the answer: the failure point is 3
    row = _row([10, 11, 12, 99, 13, 14], "NEN.NN", {0: 1.0, 2: 2.0, 4: 9.0})
    assert failure_point(row, answer, ends) == 3
    assert repair_position(row, answer, ends) == 2  # 4 costs more but comes after the failure
    # no naive choice up to the failure point: the costliest anywhere (the naive side led the
    # text to an unverified end later on, e.g. an answer named without its box)
    late = _row([10, 11, 12, 99, 13, 14], "EE..NN", {4: 1.0, 5: 3.0})
    assert repair_position(late, answer, ends) == 5
    # the answer stated before the end: no early failure, the whole row counts
    stated = _row([50, 51, 99, 13], "N.NN", {0: 1.0, 3: 4.0})
    assert failure_point(stated, answer, ends) == 3
    assert repair_position(stated, answer, ends) == 3
    # the answer named, yet the target failed (say, without its box): the framing of the
    # sentence that names it is at fault, so the costliest naive choice in that sentence, even
    # where a costlier one comes earlier (the old rule took 1, in the first sentence)
    closing = _row([10, 11, 99, 12, 13, 50, 51, 99], "NN.NN..N", {1: 9.0, 3: 2.0, 4: 1.0})
    assert closing_sentence(closing, answer, ends) == 3
    assert repair_position(closing, answer, ends) == 3
    # no naive choice in that sentence: the latest one before it
    framed = _row([10, 11, 99, 12, 13, 50, 51, 99], "NN.EE...", {0: 9.0, 1: 1.0})
    assert repair_position(framed, answer, ends) == 1
    assert closing_sentence(_row([50, 51], "..", {}), answer, ends) == 0
    assert closing_sentence(row, answer, ends) is None
    # forced positions are not candidates, nor expert ones; ties go to the earliest
    assert repair_position(_row([1, 2, 3], "RER", {}), answer, ends) is None
    assert repair_position(_row([1, 2, 3], "NNE", {0: 1.0, 1: 1.0}), answer, ends) == 0


def test_prefix_and_share() -> None:
    row = _row([1, 2, 3, 4], "N.EN", {})
    assert row.naive_share == pytest.approx(2 / 3)
    head = row.prefix(2)
    assert head.tokens == [1, 2] and head.sides == "N." and [s[0] for s in head.signals] == [0]
    assert MixedRow().naive_share is None
    with pytest.raises(ValueError, match="mixing"):
        Mixing("blind")
