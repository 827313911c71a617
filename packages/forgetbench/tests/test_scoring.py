from __future__ import annotations

import pytest

from forgetbench import (
    extract_code,
    last_boxed,
    load_benchmark,
    mmlu_letter,
    score_math,
    score_mmlu,
)


def test_last_boxed_is_brace_matched():
    assert last_boxed("a \\boxed{1} then \\boxed{\\frac{1}{2}} end") == "\\frac{1}{2}"
    assert last_boxed("no box") is None
    assert last_boxed("\\boxed{3} and an open \\boxed{4") == "3"


@pytest.mark.parametrize(
    ("reply", "gold", "ok"),
    [
        ("so \\boxed{0.5}", "\\frac{1}{2}", True),
        ("\\boxed{\\frac{1}{2}}", "0.5", True),
        ("\\boxed{18}", "18", True),
        ("\\boxed{18.0}", "18", True),
        ("first \\boxed{18} then \\boxed{19}", "18", False),  # the last box counts
        ("the answer is 18", "18", False),  # no box: wrong
        ("\\boxed{x^2+2x+1}", "(x+1)^2", True),
        ("\\boxed{17}", "18", False),
    ],
)
def test_score_math(reply, gold, ok):
    assert score_math(reply, gold) is ok


def test_score_math_falls_back_to_exact_match(monkeypatch):
    import math_verify

    def broken(*args, **kwargs):
        raise RuntimeError("sympy fell over")

    monkeypatch.setattr(math_verify, "parse", broken)
    assert score_math("\\boxed{ abc }", "abc")
    assert not score_math("\\boxed{0.5}", "\\frac{1}{2}")


@pytest.mark.parametrize(
    ("reply", "gold", "letter", "ok"),
    [
        ("Reasoning ... \\boxed{B}", "B", "B", True),
        ("\\boxed{a} no wait \\boxed{c}", "C", "C", True),  # last box, case-insensitive
        ("<think>\\boxed{A}</think> \\boxed{D}", "D", "D", True),
        ("<think>maybe \\boxed{A}</think>D", "D", None, True),  # think dropped, then line 1
        ("<think>x</think>\nD", "D", None, False),  # the first line as it starts: empty
        ("\\boxed{A}</think>\\boxed{B}</think>", "B", "B", True),  # after the first </think>
        ("C.\nBecause ...", "C", None, True),  # no box: first line, punctuation dropped
        ("(C)", "C", None, True),
        ("The answer is C", "C", None, False),  # the first line must be the letter alone
        ("\\boxed{E}", "C", None, False),
        ("\\boxed{B}", "C", "B", False),
    ],
)
def test_mmlu_letter_rules(reply, gold, letter, ok):
    assert mmlu_letter(reply) == letter
    assert score_mmlu(reply, gold) is ok


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ("Here:\n```python\ndef f():\n    return 1\n```\nmore", "def f():\n    return 1"),
        ("```py\nA\n```\n```python\nB\n```", "A"),
        ("```\nuntagged\n```", "untagged"),
        ("```java\nint x;\n```\n```python\nok\n```", "java\nint x;"),  # the first pair
        ("```python3\nok\n```", "3\nok"),  # the tag alternation stops at "python"
        ("```python\n    return 1\n```", "return 1"),  # stripped, indentation too
        ("def g(): pass\n```python\n", "def g(): pass\n"),  # no closed block: text before fence
        ("```python\n", ""),  # an empty text before the fence stays empty
        ("    return 1\n", "    return 1\n"),  # no fence at all: the whole reply
    ],
)
def test_extract_code(reply, code):
    assert extract_code(reply) == code


def test_fake_model_returning_gold_scores_one():
    rows = load_benchmark("gsm8k-100")
    assert all(score_math(f"Let me see. \\boxed{{{r['answer']}}}", r["answer"]) for r in rows)
    mmlu = load_benchmark("mmlu")[:200]
    assert all(score_mmlu(f"Answer: \\boxed{{{r['answer']}}}", r["answer"]) for r in mmlu)
