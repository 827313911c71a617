"""The mixed-rollout decoder against `generate` and the no-cache reference method, greedy
decoding, masks, sampling."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import torch

from mixsd_core import (
    Mixing,
    draw_mask,
    greedy_generate,
    mixed_rollout,
    reference_mixed_rollout,
    reference_mixed_row,
    sample_rollout,
    sampled_mixed_rollout,
    stop_token_ids,
    traced_mixed_rollout,
)
from mixsd_core._rollout_policy import answer_variants, ending_token_ids
from mixsd_core.testing import EXAMPLE_POLICIES

STEPS = 20


def _generate(model, tok, text: str) -> list[int]:
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    return model.generate(ids, max_new_tokens=STEPS, do_sample=False)[0, ids.shape[1] :].tolist()


def _mixed(tiny_lm, naive, expert, masks) -> list[list[int]]:
    model, tok = tiny_lm
    eos = stop_token_ids(model, tok)
    return mixed_rollout(model, tok, naive, expert, masks, max_new_tokens=STEPS, eos_token_ids=eos)


def test_draw_mask() -> None:
    assert draw_mask(0.0, 0, "a", 0, 50) == [0] * 50
    assert draw_mask(1.0, 0, "a", 0, 50) == [1] * 50
    mask = draw_mask(0.5, 7, "kgfact-1", 2, 400)
    assert mask == draw_mask(0.5, 7, "kgfact-1", 2, 400)
    assert mask[:100] == draw_mask(0.5, 7, "kgfact-1", 2, 100)  # longer extends shorter
    assert 150 < sum(mask) < 250
    others = [draw_mask(0.5, 8, "kgfact-1", 2, 400), draw_mask(0.5, 7, "kgfact-2", 2, 400)]
    assert all(m != mask for m in [*others, draw_mask(0.5, 7, "kgfact-1", 3, 400)])
    with pytest.raises(ValueError, match="alpha"):
        draw_mask(1.5, 0, "a", 0, 3)


def test_mask_ignores_pythonhashseed() -> None:
    code = "from mixsd_core._masks import draw_mask; print(draw_mask(0.3, 1, 'id-9', 4, 64))"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert runs == {f"{draw_mask(0.3, 1, 'id-9', 4, 64)}\n"}


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_pure_masks_reproduce_generate(tiny_lm, prompts, alpha) -> None:
    model, tok = tiny_lm
    ids, naive, expert = prompts
    masks = [draw_mask(alpha, 0, i, 0, STEPS) for i in ids]
    expected = [_generate(model, tok, p) for p in (expert if alpha == 0 else naive)]
    assert _mixed(tiny_lm, naive, expert, masks) == expected


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_batched_equals_reference(tiny_lm, prompts, batch_size) -> None:
    model, tok = tiny_lm
    eos = stop_token_ids(model, tok)
    ids, naive, expert = prompts
    masks = [draw_mask(0.5, 1, i, 0, STEPS) for i in ids]
    got = []
    for s in range(0, len(ids), batch_size):
        got += _mixed(
            tiny_lm,
            naive[s : s + batch_size],
            expert[s : s + batch_size],
            masks[s : s + batch_size],
        )
    reference = [
        reference_mixed_rollout(model, tok, n, e, m, max_new_tokens=STEPS, eos_token_ids=eos)
        for n, e, m in zip(naive, expert, masks, strict=True)
    ]
    assert got == reference
    # The comparison means something only if rows stop at different steps and mixing matters.
    assert len({len(r) for r in reference}) >= 3 and min(map(len, reference)) < STEPS
    pure = [_mixed(tiny_lm, naive, expert, [[v] * STEPS] * len(ids)) for v in (0, 1)]
    assert sum(r not in (a, b) for r, a, b in zip(reference, *pure, strict=True)) >= len(ids) // 2


def test_rows_do_not_depend_on_batch_order(tiny_lm, prompts) -> None:
    ids, naive, expert = prompts
    masks = [draw_mask(0.5, 2, i, 0, STEPS) for i in ids]
    forward = _mixed(tiny_lm, naive, expert, masks)
    backward = _mixed(tiny_lm, naive[::-1], expert[::-1], masks[::-1])
    assert forward == backward[::-1]


def test_mask_shorter_than_max_new_tokens_is_rejected(tiny_lm, prompts) -> None:
    _, naive, expert = prompts
    with pytest.raises(ValueError, match="mask"):
        _mixed(tiny_lm, naive[:1], expert[:1], [[0] * (STEPS - 1)])


def test_sampling_is_seeded_and_order_free(tiny_lm, prompts) -> None:
    model, tok = tiny_lm
    ids, naive, _ = prompts
    eos = stop_token_ids(model, tok)

    def sample(texts, names, temperature=1.0, seed=0):
        options = dict(n=3, max_new_tokens=STEPS, eos_token_ids=eos, top_p=0.9)
        return sample_rollout(
            model, tok, texts, seed=seed, example_ids=names, temperature=temperature, **options
        )

    first = sample(naive, ids)
    assert first == sample(naive[::-1], ids[::-1])[::-1]
    assert first != sample(naive, ids, seed=1)
    assert any(len({tuple(s) for s in group}) > 1 for group in first)  # samples differ
    greedy = sample(naive, ids, temperature=0.0)
    assert all(
        group == [_generate(model, tok, p)] * 3 for group, p in zip(greedy, naive, strict=True)
    )


def test_mixed_sampling_is_seeded(tiny_lm, prompts) -> None:
    model, tok = tiny_lm
    ids, naive, expert = prompts
    masks = [draw_mask(0.5, 0, i, 0, STEPS) for i in ids]
    eos = stop_token_ids(model, tok)
    kwargs = dict(max_new_tokens=STEPS, eos_token_ids=eos, temperature=0.8, seeds=list(range(8)))
    a = sampled_mixed_rollout(model, tok, naive, expert, masks, **kwargs)
    assert a == sampled_mixed_rollout(model, tok, naive, expert, masks, **kwargs)
    assert a != _mixed(tiny_lm, naive, expert, masks)
    with pytest.raises(ValueError, match="use mixed_rollout"):
        sampled_mixed_rollout(model, tok, naive, expert, masks, **{**kwargs, "temperature": 0.0})


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_greedy_generate_is_generate(tiny_lm, prompts, batch_size) -> None:
    model, tok = tiny_lm
    _, naive, _ = prompts
    expected = [_generate(model, tok, p) for p in naive]
    assert len({len(e) for e in expected}) >= 2  # rows stop at different steps
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in naive]
    got = greedy_generate(model, tok, naive, max_new_tokens=STEPS, batch_size=batch_size)
    assert got == expected
    assert greedy_generate(model, tok, ids, max_new_tokens=STEPS, batch_size=batch_size) == got
    # Explicit stops: a stop id that never comes decodes the full length.
    long = greedy_generate(model, tok, naive[:2], max_new_tokens=STEPS, stop_ids=[-1])
    assert [len(r) for r in long] == [STEPS, STEPS]


# ---------------------------------------------------------------------------- adaptive mixing


@pytest.fixture(scope="module")
def guard_context(tiny_lm, make_records):
    """(answer variants, answer check) per record and the sentence-ending ids of the tiny
    model's records. The check reads the text, as the rollout's verifier does: the answer
    counts as stated once the text holds three spaces."""
    model, tok = tiny_lm
    records = make_records()
    answers = [answer_variants(tok, r["answer"]) for r in records]
    checks = [lambda ids: tok.decode(ids).count(" ") >= 3 for _ in records]
    return answers, checks, ending_token_ids(tok, stop_token_ids(model, tok))


def _reference_rows(tiny_lm, prompts, masks, mixing, guard_context, forced=None):
    model, tok = tiny_lm
    _, naive, expert = prompts
    answers, checks, ends = guard_context
    return [
        reference_mixed_row(
            model,
            tok,
            n,
            e,
            m,
            max_new_tokens=STEPS,
            eos_token_ids=stop_token_ids(model, tok),
            mixing=mixing,
            answer_ids=a,
            ending_ids=ends,
            forced=f,
            answer_check=c,
        )
        for n, e, m, a, c, f in zip(
            naive, expert, masks, answers, checks, forced or [()] * len(masks), strict=True
        )
    ]


def _traced(tiny_lm, prompts, masks, mixing, guard_context, rows=slice(None), **kwargs):
    model, tok = tiny_lm
    _, naive, expert = prompts
    answers, checks, ends = guard_context
    return traced_mixed_rollout(
        model,
        tok,
        naive[rows],
        expert[rows],
        masks[rows],
        max_new_tokens=STEPS,
        eos_token_ids=stop_token_ids(model, tok),
        mixing=mixing,
        answer_ids=answers[rows],
        ending_ids=ends,
        **{"answer_checks": checks[rows], **kwargs},
    )


@pytest.mark.parametrize("policy", sorted(EXAMPLE_POLICIES))
@pytest.mark.parametrize("batch_size", [3, 8])
def test_traced_batched_equals_reference(
    tiny_lm, prompts, guard_context, policy, batch_size
) -> None:
    ids, _, _ = prompts
    mixing = EXAMPLE_POLICIES[policy]
    masks = [draw_mask(0.5, 1, i, 0, STEPS) for i in ids]
    got = []
    for s in range(0, len(ids), batch_size):
        got += _traced(tiny_lm, prompts, masks, mixing, guard_context, slice(s, s + batch_size))
    reference = _reference_rows(tiny_lm, prompts, masks, mixing, guard_context)
    assert [g.tokens for g in got] == [r.tokens for r in reference]
    assert [g.takes_naive for g in got] == [r.takes_naive for r in reference]
    assert [g.sides for g in got] == [r.sides for r in reference]
    for g, r in zip(got, reference, strict=True):
        assert [s[0] for s in g.signals] == [s[0] for s in r.signals]
        assert [s[1:] for s in g.signals] == [pytest.approx(s[1:], abs=1e-4) for s in r.signals]
    # The comparison means something: both sides are taken at disagreement positions, and a
    # policy other than bernoulli decides differently from the mask somewhere.
    sides = "".join(r.sides for r in reference)
    assert "N" in sides and "E" in sides
    if policy != "bernoulli":
        bits = [m[: len(r.tokens)] for m, r in zip(masks, reference, strict=True)]
        assert any(
            r.takes_naive[t] != b[t]
            for r, b in zip(reference, bits, strict=True)
            for t, c in enumerate(r.sides)
            if c != "."
        )


def test_traced_bernoulli_and_gate_tau_0_are_the_paper(tiny_lm, prompts, guard_context) -> None:
    ids, naive, expert = prompts
    masks = [draw_mask(0.5, 3, i, 0, STEPS) for i in ids]
    paper = _mixed(tiny_lm, naive, expert, masks)
    for mixing in (Mixing(), Mixing("gate", tau=0.0)):
        rows = _traced(tiny_lm, prompts, masks, mixing, guard_context)
        assert [r.tokens for r in rows] == paper
        assert [r.takes_naive for r in rows] == [
            m[: len(p)] for m, p in zip(masks, paper, strict=True)
        ]
    gated = _traced(tiny_lm, prompts, masks, EXAMPLE_POLICIES["gate"], guard_context)
    assert [r.tokens for r in gated] != paper  # tau > 0 does change targets


def test_answer_guard_keeps_the_naive_side_from_ending_early(
    tiny_lm, prompts, guard_context
) -> None:
    """At alpha 1 the gate takes almost every naive token; with the answer guard and an answer
    never stated, no naive token that ends a sentence is taken."""
    ids, _, _ = prompts
    masks = [draw_mask(1.0, 0, i, 0, STEPS) for i in ids]
    ends = guard_context[2]
    never = [lambda ids: False] * len(ids)
    gate = EXAMPLE_POLICIES["gate"]
    plain = _traced(tiny_lm, prompts, masks, gate, guard_context, answer_checks=never)
    guarded = _traced(
        tiny_lm,
        prompts,
        masks,
        dataclasses.replace(gate, answer_guard=True),
        guard_context,
        answer_checks=never,
    )

    def naive_endings(rows: list) -> list[int]:
        return [
            r.tokens[t]
            for r in rows
            for t, c in enumerate(r.sides)
            if c == "N" and r.tokens[t] in ends
        ]

    assert naive_endings(plain) and not naive_endings(guarded)
    assert "N" in "".join(r.sides for r in guarded)  # the gate still mixes elsewhere


@pytest.mark.parametrize("policy", ["bernoulli", "guard"])
def test_resuming_from_a_prefix_equals_the_forced_reference(
    tiny_lm, prompts, guard_context, policy
) -> None:
    """Repair's re-decode (kept prefix + a forced position) is the method with that position
    forced from the start."""
    ids, _, _ = prompts
    mixing = EXAMPLE_POLICIES[policy]
    masks = [draw_mask(0.5, 4, i, 0, STEPS) for i in ids]
    first = _traced(tiny_lm, prompts, masks, mixing, guard_context)
    flips = [next((t for t, c in enumerate(r.sides) if c == "N"), None) for r in first]
    assert sum(f is not None for f in flips) >= 3
    forced = [() if f is None else (f,) for f in flips]
    prefixes = [None if f is None else r.prefix(f) for r, f in zip(first, flips, strict=True)]
    resumed = _traced(
        tiny_lm, prompts, masks, mixing, guard_context, forced=forced, prefixes=prefixes
    )
    reference = _reference_rows(tiny_lm, prompts, masks, mixing, guard_context, forced)
    assert [r.tokens for r in resumed] == [r.tokens for r in reference]
    assert [r.sides for r in resumed] == [r.sides for r in reference]
    assert all("R" in r.sides for r, f in zip(resumed, flips, strict=True) if f is not None)
    assert [r.tokens for r in resumed] != [r.tokens for r in first]
