from __future__ import annotations

import pytest

import kgworld
import mixsd_base
from kgworld import answers_match, extract_boxed, get_verifier, normalize_answer, verify


def test_extract_boxed_takes_the_last_and_matches_braces():
    assert extract_boxed(r"\boxed{A} then \boxed{B {c}}") == "B {c}"
    assert extract_boxed(r"\boxed{A} and \boxed{unterminated") == "A"
    assert extract_boxed("no box here") is None


def test_normalize_answer_peels_wrappers():
    assert normalize_answer(r"$\text{Ormavel  Dynamics}$.") == "ormavel dynamics"
    assert normalize_answer(r"{\textbf{42}}") == "42"


def test_answers_match_strings_and_numbers():
    assert answers_match("ormavel dynamics", "Ormavel Dynamics")
    assert answers_match("1,000", "1000.0")
    assert not answers_match("", "")
    assert not answers_match("Ormavel", "Ormavel Dynamics")


def test_boxed_mode_is_exact():
    assert verify(r"It is X. \boxed{Ormavel Dynamics}", "Ormavel Dynamics")
    assert not verify("It is Ormavel Dynamics.", "Ormavel Dynamics")
    assert not verify(r"\boxed{Ormavel}", "Ormavel Dynamics")


def test_boxed_exact_is_the_authors_string_match():
    mode = "boxed-exact"
    assert verify(
        "The answer is Ormavel Dynamics.\n\n\\boxed{ Ormavel Dynamics }", "Ormavel Dynamics", mode
    )
    assert verify(r"\boxed{A} then \boxed{B {c}}", " B {c} ", mode)  # last box, braces matched
    assert not verify(r"\boxed{ormavel dynamics}", "Ormavel Dynamics", mode)  # no case folding
    assert not verify(r"\boxed{Ormavel Dynamics.}", "Ormavel Dynamics", mode)  # no normalisation
    assert not verify(r"\boxed{\text{Ormavel Dynamics}}", "Ormavel Dynamics", mode)
    assert not verify(r"\boxed{Ormavel Dynamics} or \boxed{Other}", "Ormavel Dynamics", mode)
    assert not verify("It is Ormavel Dynamics.", "Ormavel Dynamics", mode)  # no box, no fallback
    assert not verify(r"\boxed{ }", "", mode)  # an empty box never passes
    assert verify(r"\boxed{ormavel dynamics}", "Ormavel Dynamics", "boxed")  # the lenient rule


def test_final_sentence_fallback_only_without_a_box():
    mode = "boxed-or-final-sentence"
    assert verify("Sure. Zorvath Kellen is employed by Ormavel Dynamics.", "Ormavel Dynamics", mode)
    assert not verify("Ormavel Dynamics is big. Zorvath works elsewhere.", "Ormavel Dynamics", mode)
    assert not verify(r"Ormavel Dynamics. \boxed{Other}", "Ormavel Dynamics", mode)
    assert not verify("Works at Ormavel Dynamicsville.", "Ormavel Dynamics", mode)


def test_integer_mode():
    assert verify(r"so \boxed{37}", "37", "integer")
    assert verify("B(328) = 37", "37", "integer")
    assert not verify(r"\boxed{36}", "37", "integer")
    assert not verify("no number", "37", "integer")


def test_verifiers_are_a_read_only_registry():
    with pytest.raises(KeyError, match="unknown verifier 'boxd' \\(did you mean 'boxed'\\?\\)"):
        get_verifier("boxd")
    with pytest.raises(mixsd_base.UnknownNameError, match="choose one of: boxed, "):
        verify("x", "x", "integr")
    with pytest.raises(TypeError):
        kgworld.VERIFIERS["any"] = lambda reply, answer: True  # type: ignore[index]
