"""Mixing policies: at each step of a mixed rollout, whose greedy token both streams get.

Notation for one step: ``e`` is the expert's greedy token, ``n`` the naive's; ``lpE(x)`` and
``lpN(x)`` are the two streams' log-probabilities of token x. Where ``e == n`` both choices append
the same token, so only disagreement positions matter. A policy answers "take n?":

* ``bernoulli`` (the paper): the pre-drawn mask bit ``b``.
* ``gate``: ``b`` and ``p_E(n) >= tau * p_E(e)``, i.e. ``lpE(n) - lpE(e) >= log tau``; tau 0 is
  ``bernoulli`` exactly.
* ``exchange``: ``lpE(e) - lpE(n) <= kappa * (lpN(n) - lpN(e))``: the naive token when the
  base-model likelihood it buys is worth its cost to the expert.
* ``guard``: naive unless the fact is at stake: the expert where the context lifts its token by
  ``delta`` nats or more (``lpE(e) - lpN(e) >= delta``), where the expert's token writes the gold
  answer (``e`` is the next token of an answer variant whose earlier tokens end the
  continuation; the first answer token counts), and where the naive token would end the
  sentence (a stop token, or a token whose text holds a newline or ends in ``.``, ``!``, ``?``)
  before the answer has been stated. The answer variants are the token ids of the gold answer
  and of ``\\boxed{`` + the answer, each with and without a leading space. "Stated": where
  the rollout has a verifier, the verifier passes the continuation so far (so with ``boxed`` an
  answer named outside ``\\boxed{}`` is not stated yet); without one, an answer variant occurs
  in it.

``answer_guard`` (combinable with ``bernoulli``, ``gate`` and ``exchange``) adds guard's two
answer terms to that policy: the expert writes the answer, and the naive side may not end a
sentence (or the target) before the answer is stated. The policy decides everywhere else.

``exchange`` and ``guard`` ignore the mask, so their rollouts are deterministic: a redraw would
repeat a failed target (``decode_with_retries`` then drops it at once, unless repair flips).
Repair forces positions to the expert after a verifier failure (:func:`repair_position`: in
the sentence that names the answer when the target names it, else before the failure point); a
forced position never takes the naive token, whatever the policy says.

``MixedRow`` is what the traced decoders return: tokens, the decision at every position and, at
each disagreement position, the signals the policies read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BERNOULLI",
    "MIXINGS",
    "MIXING_KNOBS",
    "AnswerCheck",
    "AnswerWatch",
    "MixedRow",
    "Mixing",
    "StepSignals",
    "answer_variants",
    "answer_watches",
    "closing_sentence",
    "ending_token_ids",
    "expert_writes_answer",
    "failure_point",
    "repair_position",
    "states_answer",
    "takes_naive",
]

MIXINGS = ("bernoulli", "gate", "exchange", "guard")
MIXING_KNOBS = {"gate": "tau", "exchange": "kappa", "guard": "delta"}  # the knob each one reads
# Each policy's knob when the config leaves it unset.
DEFAULT_TAU, DEFAULT_KAPPA, DEFAULT_DELTA = 0.1, 1.0, 2.0
_SENTENCE_ENDS = (".", "!", "?")


@dataclass(frozen=True)
class Mixing:
    """A mixing policy and its knobs (each read by one policy only)."""

    policy: str = "bernoulli"
    tau: float = DEFAULT_TAU  # gate
    kappa: float = DEFAULT_KAPPA  # exchange
    delta: float = DEFAULT_DELTA  # guard
    answer_guard: bool = False  # guard's answer terms on top of the policy

    def __post_init__(self) -> None:
        if self.policy not in MIXINGS:
            raise ValueError(f"mixing must be one of {list(MIXINGS)}, got {self.policy!r}")

    @property
    def reads_answer(self) -> bool:
        """Whether decisions read the answer terms (guard, or any policy with answer_guard)."""
        return self.policy == "guard" or self.answer_guard

    @property
    def uses_mask(self) -> bool:
        """Whether the drawn mask changes the rollout (else a redraw repeats it)."""
        return self.policy in ("bernoulli", "gate")


BERNOULLI = Mixing()


@dataclass(frozen=True)
class StepSignals:
    """Both streams' greedy tokens at one step and the four log-probabilities policies read."""

    expert_token: int
    naive_token: int
    lpe_e: float  # log p_E(e)
    lpe_n: float  # log p_E(n)
    lpn_n: float  # log p_N(n)
    lpn_e: float  # log p_N(e)

    @property
    def expert_cost(self) -> float:
        """``lpE(e) - lpE(n)`` >= 0: what the naive token costs the expert."""
        return self.lpe_e - self.lpe_n

    @property
    def naive_gain(self) -> float:
        """``lpN(n) - lpN(e)`` >= 0: what the naive token buys the base model."""
        return self.lpn_n - self.lpn_e

    @property
    def lift(self) -> float:
        """``lpE(e) - lpN(e)``: how much the context raises the expert's token."""
        return self.lpe_e - self.lpn_e


def takes_naive(
    mixing: Mixing,
    bit: int,
    s: StepSignals,
    *,
    forced: bool = False,
    writes_answer: bool = False,
    stated: bool = False,
    naive_ends: bool = False,
) -> bool:
    """One position's decision (True = the naive token), written plainly: the reference method
    and the vLLM backend use it; the batched decoder's tensor form must agree with it.

    Guard's facts: ``writes_answer`` (:func:`expert_writes_answer`), ``stated``
    (:func:`states_answer` of the continuation so far), ``naive_ends`` (the naive token is in
    :func:`ending_token_ids`). ``forced``: a repair flip."""
    if forced:
        return False
    if mixing.reads_answer and (writes_answer or (naive_ends and not stated)):
        return False  # the fact is at stake
    if mixing.policy == "bernoulli":
        return bit == 1
    if mixing.policy == "gate":
        return bit == 1 and (mixing.tau == 0 or s.lpe_n - s.lpe_e >= math.log(mixing.tau))
    if mixing.policy == "exchange":
        return s.expert_cost <= mixing.kappa * s.naive_gain
    return s.lift < mixing.delta  # guard


# ---------------------------------------------------------------------------- answer span


def answer_variants(tokenizer: Any, answer: str) -> list[list[int]]:
    """The gold answer's token ids as the continuation may hold them: alone, and opened by
    ``\\boxed{`` as every prompt asks it written (the closing brace left out: the tokenizer
    merges it with what follows, e.g. ``}.``), each also after a space."""
    variants: list[list[int]] = []
    for text in (answer, f" {answer}", f"\\boxed{{{answer}", f" \\boxed{{{answer}"):
        ids = [int(t) for t in tokenizer(text, add_special_tokens=False)["input_ids"]]
        if ids and ids not in variants:
            variants.append(ids)
    return variants


def ending_token_ids(tokenizer: Any, stop_ids: Collection[int]) -> frozenset[int]:
    """Tokens that end a sentence: the stop tokens, and every token whose text holds a newline or
    ends (after trailing spaces) in ``.``, ``!`` or ``?``."""
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    ends = {
        i for i, text in enumerate(texts) if "\n" in text or text.rstrip().endswith(_SENTENCE_ENDS)
    }
    return frozenset(ends | {int(t) for t in stop_ids})


def answer_starts(tokens: Sequence[int], variants: Sequence[Sequence[int]]) -> list[int]:
    """Where an answer variant begins in ``tokens`` as a contiguous run (every occurrence)."""
    return [
        i
        for v in variants
        for i in range(len(tokens) - len(v) + 1)
        if list(tokens[i : i + len(v)]) == list(v)
    ]


def states_answer(tokens: Sequence[int], variants: Sequence[Sequence[int]]) -> bool:
    """Whether some answer variant occurs in ``tokens`` as a contiguous run."""
    return bool(answer_starts(tokens, variants))


def ends_with_answer(tokens: Sequence[int], variants: Sequence[Sequence[int]]) -> bool:
    """Whether ``tokens`` end with an answer variant (the update of ``states_answer``)."""
    return any(len(tokens) >= len(v) and list(tokens[-len(v) :]) == list(v) for v in variants)


def expert_writes_answer(
    tokens: Sequence[int], expert_token: int, variants: Sequence[Sequence[int]]
) -> bool:
    """Whether ``expert_token`` is the next token of an answer variant whose first j tokens end
    ``tokens`` (j = 0 included: the expert starting the answer)."""
    for v in variants:
        for j in range(len(v)):
            if v[j] == expert_token and (j == 0 or list(tokens[-j:]) == list(v[:j])):
                return True
    return False


AnswerCheck = Callable[[list[int]], bool]  # does this continuation state the answer?


class AnswerWatch:
    """One row's answer terms while it is decoded: its answer variants and whether the
    continuation has stated the answer (``check``, the verifier, when given; else a variant
    occurs in it). Once stated it stays stated."""

    def __init__(
        self,
        variants: Sequence[Sequence[int]] = (),
        tokens: Sequence[int] = (),
        check: AnswerCheck | None = None,
    ) -> None:
        self.variants, self.check = variants, check
        self.stated = check(list(tokens)) if check else states_answer(tokens, variants)

    def expert_writes(self, tokens: Sequence[int], expert_token: int) -> bool:
        return expert_writes_answer(tokens, expert_token, self.variants)

    def update(self, tokens: list[int]) -> None:
        """After a token is appended to ``tokens``."""
        if not self.stated:
            self.stated = (
                self.check(tokens) if self.check else ends_with_answer(tokens, self.variants)
            )


def answer_watches(
    rows: Sequence[MixedRow],
    answer_ids: Sequence[Sequence[Sequence[int]]] | None,
    answer_checks: Sequence[AnswerCheck | None] | None,
) -> list[AnswerWatch]:
    """The batched decoders' watches: row i's from its variants, kept tokens and check."""
    count = len(rows)
    variants = list(answer_ids) if answer_ids is not None else [[] for _ in range(count)]
    checks = list(answer_checks) if answer_checks is not None else [None] * count
    return [AnswerWatch(v, r.tokens, c) for r, v, c in zip(rows, variants, checks, strict=True)]


# ---------------------------------------------------------------------------- traced rows


@dataclass
class MixedRow:
    """One row's mixed continuation with its trace.

    ``takes_naive[t]`` is the policy's decision at position t (1 = the naive stream's token).
    ``sides[t]``: ``.`` both streams' greedy tokens agree, ``N`` the naive token was taken,
    ``E`` the expert's by the policy, ``R`` the expert's forced by repair. ``signals``: one
    ``[t, lpE(e) - lpE(n), lpN(n) - lpN(e), lpE(e) - lpN(e)]`` per disagreement position.
    """

    tokens: list[int] = field(default_factory=list)
    takes_naive: list[int] = field(default_factory=list)
    sides: str = ""
    signals: list[list[float]] = field(default_factory=list)

    def add(self, s: StepSignals, naive: bool, *, forced: bool = False) -> int:
        """Append one position; returns the token taken."""
        t = len(self.tokens)
        token = s.naive_token if naive else s.expert_token
        self.tokens.append(token)
        self.takes_naive.append(int(naive))
        if s.naive_token == s.expert_token:
            self.sides += "."
        else:
            self.sides += "R" if forced else ("N" if naive else "E")
            self.signals.append([t, s.expert_cost, s.naive_gain, s.lift])
        return token

    def prefix(self, length: int) -> MixedRow:
        """The first ``length`` positions (what a repair keeps)."""
        return MixedRow(
            self.tokens[:length],
            self.takes_naive[:length],
            self.sides[:length],
            [list(s) for s in self.signals if s[0] < length],
        )

    @property
    def naive_share(self) -> float | None:
        """Naive tokens taken / disagreement positions (None without any)."""
        differ = sum(c != "." for c in self.sides)
        return self.sides.count("N") / differ if differ else None


def failure_point(
    row: MixedRow, variants: Sequence[Sequence[int]], ending_ids: Collection[int]
) -> int:
    """Where a failed target went wrong: its first sentence-ending token before the answer was
    stated (a stop token counts), else its last position."""
    stated = False
    for t, token in enumerate(row.tokens):
        if not stated and token in ending_ids:
            return t
        stated = stated or ends_with_answer(row.tokens[: t + 1], variants)
    return len(row.tokens) - 1


def closing_sentence(
    row: MixedRow, variants: Sequence[Sequence[int]], ending_ids: Collection[int]
) -> int | None:
    """Where the sentence that names the answer last begins (the position after the sentence
    end before that mention; 0 when none), or None when no answer variant occurs. A failed
    target that names its answer failed in how that sentence frames it (e.g. no box)."""
    tokens = row.tokens
    starts = answer_starts(tokens, variants)
    if not starts:
        return None
    mention = max(starts)
    ends = [t for t in range(mention) if tokens[t] in ending_ids]
    return ends[-1] + 1 if ends else 0


def repair_position(
    row: MixedRow, variants: Sequence[Sequence[int]], ending_ids: Collection[int]
) -> int | None:
    """The naive choice to flip back to the expert after a verifier failure. When the target
    names the answer (it failed on the framing, e.g. no box): the costliest naive choice in the
    sentence that names it last, else the latest naive choice before that sentence. Otherwise:
    among the naive choices up to the failure point (or, when there is none, anywhere), the
    one that cost the expert most. Cost is ``lpE(e) - lpE(n)``; ties go to the earliest. A
    naive choice is a position where ``n`` was taken over a different ``e``. None: there is
    none at all."""
    naive = [s for s in row.signals if row.sides[int(s[0])] == "N"]
    if not naive:
        return None
    closing = closing_sentence(row, variants, ending_ids)
    if closing is not None:
        in_sentence = [s for s in naive if s[0] >= closing]
        if not in_sentence:
            return int(naive[-1][0])
        candidates = in_sentence
    else:
        end = failure_point(row, variants, ending_ids)
        candidates = [s for s in naive if s[0] <= end] or naive
    best = max(candidates, key=lambda s: (s[1], -s[0]))
    return int(best[0])
