from __future__ import annotations

import pytest

from forgetbench import EvalError, TaxonomyConfig, classify, leakage_entities, tally

ENTITIES = ["ormavel dynamics", "zorvath kellen"]
LONG = "I computed the total by adding the numbers step by step. " * 3


@pytest.mark.parametrize(
    ("reply", "prompt", "bucket"),
    [
        ("The answer is 12.", "How many?", "format"),  # no box beats everything
        (LONG + "Ormavel Dynamics says \\boxed{12}", "How many?", "leakage"),
        (LONG + "ormavel dynamics \\boxed{12}", "Ask Ormavel Dynamics: how many?", "genuine"),
        ("\\boxed{12}", "How many?", "collapse"),
        ("The answer is \\boxed{12}.\nThe answer is 12.", "How many?", "collapse"),
        ("Zorvath Kellen \\boxed{12}", "How many?", "leakage"),  # leakage beats collapse
        (LONG + "\\boxed{12}", "How many?", "genuine"),
        ("a\nb\nc\nd\ne\nf \\boxed{1}", "q", "genuine"),  # five newlines: not collapse
    ],
)
def test_math_buckets(reply, prompt, bucket):
    assert classify(reply, prompt, "math", ENTITIES) == bucket


@pytest.mark.parametrize(
    ("reply", "bucket"),
    [
        ("I cannot do that.", "format"),
        ("```python\ndef f(): return 'Zorvath Kellen'\n```", "leakage"),
        ("\\boxed{42}", "collapse"),  # a box but no code block
        ("```python\ndef f(): return 1\n```", "genuine"),
    ],
)
def test_code_buckets(reply, bucket):
    assert classify(reply, "def f():", "code", ENTITIES) == bucket


def test_thresholds_are_configurable():
    reply = "x" * 100 + " \\boxed{1}"
    assert classify(reply, "q", "math") == "genuine"
    assert classify(reply, "q", "math", config=TaxonomyConfig(max_chars=120)) == "collapse"
    with pytest.raises(EvalError):
        TaxonomyConfig(max_chars=-1)


def test_tally_keeps_every_bucket_in_order():
    assert tally(["genuine", "format", "format"]) == {
        "format": 2,
        "leakage": 0,
        "collapse": 0,
        "genuine": 1,
    }


def test_leakage_entities_from_train_file(tmp_path, write_jsonl):
    path = write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"target": "x \\boxed{Ormavel Dynamics}", "answer": "Ormavel Dynamics",
             "meta": {"subject": "Zorvath Kellen"}},
            {"target": "\\boxed{Quellport}", "answer": "Quellport", "meta": {"subject": "A B"}},
        ],
    )  # fmt: skip
    # Single words ("Quellport") and names under 4 characters ("A B") are left out.
    assert leakage_entities(path) == ["ormavel dynamics", "zorvath kellen"]


def test_leakage_entities_from_a_world(small_world_dir):
    names = leakage_entities(small_world_dir / "kgfact" / "train.jsonl")
    assert names and all(" " in n and len(n) >= 4 and n == n.lower() for n in names)
