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


def test_extract_answer_takes_the_first_step_that_succeeds():
    from kgworld._verify import extract_answer

    reply = r"<answer>Tag</answer> 12 then \boxed{A} and \boxed{B {c}}"
    assert extract_answer(reply) == "B {c}"  # 1. the last box, braces matched
    assert extract_answer("So <answer> Mount Aldris </answer>, year 1920.") == "Mount Aldris"
    assert extract_answer(r"\boxed{ } <answer>X</answer>") == "X"  # an empty box yields nothing
    assert extract_answer("B(3) = 1,024, then -7.5 and 12.") == "12"  # 3. the last number
    assert extract_answer("B(3) = -7.5") == "-7.5"
    assert extract_answer("  It is Mount Aldris.\n") == "It is Mount Aldris."  # 4. whole text


def test_normalize_answer_paper_keeps_the_period_and_matches_braces():
    from kgworld._verify import normalize_answer_paper

    assert normalize_answer_paper(r"$\text{\textbf{Mount  Aldris}}$") == "mount aldris"
    assert normalize_answer_paper(r"{\mathrm{ {Mount Aldris} }}") == "mount aldris"
    assert (
        normalize_answer_paper(r"\operatorname{Mount Aldris}.") == r"\operatorname{mount aldris}."
    )
    assert normalize_answer_paper("Mount Aldris.") == "mount aldris."  # normalize_answer drops it
    assert normalize_answer("Mount Aldris.") == "mount aldris"
    assert normalize_answer_paper("{a}{b}") == "{a}{b}"  # outer braces that do not match
    assert normalize_answer_paper(r"\frac{3}{4}") == 0.75
    assert normalize_answer_paper(r"-\frac{1}{2}") == -0.5
    assert normalize_answer_paper("1, 024") == 1024.0
    assert normalize_answer_paper(r"\boxed{7}") == r"\boxed{7}"  # not a wrapper it peels


def test_extract_loose_accepts_the_gold_inside_the_prediction():
    loose, strict = "extract-loose", "extract-strict"
    reply = r"\boxed{Mount Aldris, a city}"
    assert verify(reply, "Mount Aldris", loose)
    assert not verify(reply, "Mount Aldris", strict)
    assert verify(r"\boxed{mount  ALDRIS}", "Mount Aldris", strict)  # case and spaces fold
    assert verify(r"\boxed{Mount Aldris.}", "Mount Aldris", loose)  # the period: substring
    assert not verify(r"\boxed{Mount Aldris.}", "Mount Aldris", strict)
    assert not verify(r"\boxed{Mount}", "Mount Aldris", loose)  # the prediction inside: no
    assert verify("<answer>It is Mount Aldris</answer>", "Mount Aldris", loose)
    assert verify("It is Mount Aldris.", "Mount Aldris", loose)  # 4. the whole reply
    # 3. a number in an unboxed reply is the answer: the authors' rule, not the final sentence
    assert not verify("Mount Aldris, founded in 1920.", "Mount Aldris", loose)
    assert verify("Mount Aldris, founded in 1920.", "Mount Aldris", "boxed-or-final-sentence")
    assert not verify(r"\boxed{ }", "", loose) and not verify("anything", "", loose)


def test_extract_strict_compares_numbers_within_1e_6():
    mode = "extract-strict"
    assert verify(r"B(328) = \boxed{37}", "37", mode)
    assert verify("so B(328) is 37.", "37", mode)  # the last number
    assert verify(r"\boxed{37.0000001}", "37", mode)
    assert not verify(r"\boxed{37.001}", "37", mode)
    assert verify(r"\boxed{1,024}", "1024", mode)
    assert verify(r"\boxed{\frac{3}{4}}", "0.75", mode)
    assert not verify(r"\boxed{137}", "37", mode)
    assert verify(r"\boxed{137}", "37", "extract-loose")  # loose would take the substring
    assert not verify(r"\boxed{36}", "37", mode)


@pytest.mark.parametrize(
    ("reply", "gold"),
    [
        (r"\boxed{The Gray Heron}", "gray heron"),  # article and case
        (r"\boxed{Zurich}", "Zürich"),  # accents
        (r"\boxed{3482}", "3,482"),  # digit-group separator
        ("\\boxed{1\u00a0250}", "1,250"),  # a no-break space between digit groups
        (r"\boxed{412.50}", "412.5"),  # equal numbers
        (r"\boxed{\text{Merrow Caddon}}", "Merrow, Caddon"),  # punctuation, LaTeX wrapper
        (r"\boxed{Jean-Paul O'Neill.}", "jean paul o neill"),
        ("It flows through Dunmere: it is the Avel.", "the Avel"),  # no box: final sentence
    ],
)
def test_qa_normalized_accepts(reply: str, gold: str) -> None:
    assert verify(reply, gold, "qa-normalized")


@pytest.mark.parametrize(
    ("reply", "gold"),
    [
        (r"\boxed{412.5}", "41.25"),  # a decimal point is not punctuation
        (r"\boxed{Ostrava}", "Ostrava Nova"),
        (r"\boxed{the}", "the"),  # nothing left of the gold: never passes
        (r"\boxed{Avel} but then \boxed{Sorrel}", "Avel"),  # the last box counts
        ("The Avel is long. It is not the answer here.", "Avel"),  # not in the final sentence
    ],
)
def test_qa_normalized_rejects(reply: str, gold: str) -> None:
    assert not verify(reply, gold, "qa-normalized")


def test_qa_paper_is_the_authors_simpleqa_scorer():
    assert verify(r"so \boxed{ Gray Heron }", "gray heron", "qa-paper")  # lower and strip only
    assert not verify(r"\boxed{The Gray Heron}", "Gray Heron", "qa-paper")  # no article rule
    assert verify("<think>hm</think> Avel ", "avel", "qa-paper")  # after </think>
    assert verify(" 1889\n", "1889", "qa-paper")  # the whole reply
    assert not verify("", " ", "qa-paper")


def test_record_answers_lists_the_aliases():
    record = {"answer": "17", "meta": {"answer_aliases": ["seventeen", " "]}}
    assert kgworld.record_answers(record) == ["17", "seventeen"]
    assert kgworld.record_answers({"answer": "x", "meta": None}) == ["x"]


def test_verify_record_tries_every_answer():
    record = {"answer": "17", "meta": {"answer_aliases": ["seventeen"]}}
    exact = kgworld.get_verifier("boxed-exact")
    assert kgworld.verify_record(r"\boxed{seventeen}", record, exact)
    assert kgworld.verify_record(r"\boxed{17}", record, exact)
    assert not kgworld.verify_record(r"\boxed{18}", record, exact)
    assert not kgworld.verify_record(r"\boxed{seventeen}", {"answer": "17"}, exact)
