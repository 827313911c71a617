"""KGFunc: hand-computed op values, split sizes, disjointness, determinism, prompt/target form."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from kgworld._config import ConfigError, KGFuncConfig, KGWorldError
from kgworld._kgfunc import (
    FEW_SHOT_INPUTS,
    OPERATIONS,
    build_target,
    kgfunc_splits,
    recompute_answer,
)

SEED = 42
INPUTS = (328, 0, 7, 120)

# Values worked out by hand for INPUTS, in that order.
EXPECTED: dict[str, tuple[int, int, int, int]] = {
    "A": (104, 0, 49, 6),  # (3+2+8)*8; 3*2
    "B": (37, 0, 0, 5),  # 1+0+36; min 0: 1+4+0
    "C": (69, 0, 49, 3),  # |9-4+64|; |1-4+0|
    "D": (21, 0, 49, 5),  # 9+4+8; 1+4+0
    "E": (52, 0, 49, 4),  # 3*8+2*2+8*3; 1*0+2*2+0*1
    "F": (14, 0, 7, 5),  # 3+3+8; 1+2+2
    "G": (45, 0, 28, 4),  # 6+3+36; 1+3+0
    "H": (283, 0, 7, 12),  # min(328, 283, 832); min(120, 201, 012)
    "I": (519, 0, 7, 5),  # 3^1+2^2+8^3; 1+4+0
    "J": (62, 0, 0, 6),  # 3*77-13^2; 3*5-3^2
    "K": (40, 0, 0, 0),  # 328 mod 48; 0 mod 1; 7 mod 7; 120 mod 2
    "a": (13, 0, 7, 3),
    "b": (48, 1, 7, 2),
    "c": (3, 1, 1, 3),
    "d": (8, 0, 7, 2),
    "e": (2, 0, 7, 0),
    "f": (3, 0, 7, 1),
    "g": (8, 0, 7, 0),
    "h": (6, 0, 0, 2),
    "i": (823, 0, 7, 21),
    "j": (11, 0, 14, 1),
    "k": (2, 1, 0, 2),
    "l": (1, 0, 1, 1),
    "m": (3, 1, 1, 3),
    "n": (4, 0, 7, 3),
    "o": (77, 0, 49, 5),
    "p": (238, 0, 7, 12),
    "q": (832, 0, 7, 210),
    "r": (0, 1, 0, 1),
    "s": (26, 0, 14, 6),
    "t": (24, 0, 49, 0),
}


@pytest.fixture(scope="module")
def splits() -> dict[str, list[dict[str, Any]]]:
    return kgfunc_splits(KGFuncConfig(), SEED)


def _all(splits: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [rec for records in splits.values() for rec in records]


def test_every_op_is_covered_and_named() -> None:
    assert set(EXPECTED) == set(OPERATIONS) == set("ABCDEFGHIJK") | set("abcdefghijklmnopqrst")
    assert OPERATIONS["B"].name == "digit_min_squared_deviation_sum"
    assert OPERATIONS["H"].name == "digit_rotation_minimum"
    assert OPERATIONS["K"].name == "number_mod_digit_product"
    assert OPERATIONS["i"].name == "reverse_number"
    assert all(
        op.chain_of_thought is not None for label, op in OPERATIONS.items() if label.isupper()
    )
    assert all(op.chain_of_thought is None for label, op in OPERATIONS.items() if label.islower())


@pytest.mark.parametrize("label", sorted(EXPECTED))
def test_hand_computed_values(label: str) -> None:
    got = tuple(OPERATIONS[label].fn(x) for x in INPUTS)
    assert got == EXPECTED[label]


def test_more_hand_computed_values() -> None:
    fn = {label: op.fn for label, op in OPERATIONS.items()}
    assert fn["H"](1000) == 1  # rotations 1000, 0001, 0010, 0100
    assert fn["C"](19) == 80  # |1 - 81|
    assert fn["K"](25) == 5  # 25 mod 10
    assert fn["K"](10) == 0  # product of non-zero digits is 1
    assert fn["B"](87397) == 93  # min 3: 25+16+0+36+16
    assert fn["b"](105) == 5
    assert fn["n"](99999) == 9
    assert fn["p"](3010) == 13


def test_sizes_and_balance(splits: dict[str, list[dict[str, Any]]]) -> None:
    assert list(splits) == ["train", "test", "unseen"]
    assert len(splits["train"]) == 1600
    assert len(splits["test"]) == 175
    assert len(splits["unseen"]) == 500
    train = Counter(rec["meta"]["op"] for rec in splits["train"])
    assert sorted(train) == list("BCDEFGH")
    assert sorted(train.values()) == [228] * 3 + [229] * 4
    assert all(train[op] == 229 for op in "BCDE")  # the first ops take the remainder
    assert Counter(rec["meta"]["op"] for rec in splits["test"]) == dict.fromkeys("BCDEFGH", 25)
    unseen = Counter(rec["meta"]["op"] for rec in splits["unseen"])
    assert unseen == dict.fromkeys("abcdefghijklmnopqrst", 25)


def test_train_is_shuffled(splits: dict[str, list[dict[str, Any]]]) -> None:
    ops = [rec["meta"]["op"] for rec in splits["train"][:50]]
    assert len(set(ops)) > 3


def test_record_shape_and_ids(splits: dict[str, list[dict[str, Any]]]) -> None:
    for name, records in splits.items():
        for i, rec in enumerate(records):
            assert list(rec) == ["id", "prompt", "target", "answer", "context", "split", "meta"]
            assert rec["id"] == f"kgfunc-{name}-{i:06d}"
            assert rec["split"] == name
            assert rec["context"] is None
            op = OPERATIONS[rec["meta"]["op"]]
            assert rec["meta"] == {
                "op": op.label,
                "op_name": op.name,
                "input": rec["meta"]["input"],
            }


def test_inputs_disjoint(splits: dict[str, list[dict[str, Any]]]) -> None:
    inputs = {name: [rec["meta"]["input"] for rec in recs] for name, recs in splits.items()}
    few = set(FEW_SHOT_INPUTS)
    train, test = set(inputs["train"]), set(inputs["test"])
    assert not few & train
    assert not few & set(inputs["unseen"])
    assert not test & (train | few)
    for values in inputs.values():
        assert len(set(values)) == len(values)
        assert all(0 <= x <= 99999 for x in values)


def test_determinism() -> None:
    config = KGFuncConfig()
    first, again, other = (kgfunc_splits(config, s) for s in (SEED, SEED, SEED + 1))
    assert first == again
    for name in first:
        assert first[name] != other[name]


def test_targets_end_with_answer(splits: dict[str, list[dict[str, Any]]]) -> None:
    for rec in _all(splits):
        label, x, answer = rec["meta"]["op"], rec["meta"]["input"], rec["answer"]
        lines = rec["target"].split("\n")
        assert lines[-1] == f"\\boxed{{{answer}}}"
        assert lines[-2] == ""
        if label.isupper():
            assert lines[-3] == f"{label}({x}) = {answer}"
            assert len(lines) > 4  # a real chain of thought before the final line
        else:
            assert rec["target"] == f"The answer is {answer}.\n\n\\boxed{{{answer}}}"


def test_prompts_have_ten_correct_examples(splits: dict[str, list[dict[str, Any]]]) -> None:
    instruction = KGFuncConfig().instruction
    for rec in _all(splits)[::7]:
        op, x = OPERATIONS[rec["meta"]["op"]], rec["meta"]["input"]
        pairs = re.findall(r"^Input: (\d+)\nOutput: (\d+)$", rec["prompt"], flags=re.M)
        assert [int(q) for q, _ in pairs] == list(FEW_SHOT_INPUTS)
        assert [int(v) for _, v in pairs] == [op.fn(q) for q in FEW_SHOT_INPUTS]
        assert f"function {op.label}" in rec["prompt"]
        assert f"Question:\nWhat is the output of {op.label}({x})?" in rec["prompt"]
        assert rec["prompt"].endswith(f"\n\n{instruction}")


def test_empty_instruction_is_omitted() -> None:
    config = KGFuncConfig(instruction="", splits=["unseen"], unseen_per_op=1)
    rec = kgfunc_splits(config, SEED)["unseen"][0]
    assert rec["prompt"].endswith("?")


def test_recompute_answer(splits: dict[str, list[dict[str, Any]]]) -> None:
    for rec in _all(splits):
        assert (
            recompute_answer(rec)
            == rec["answer"]
            == str(OPERATIONS[rec["meta"]["op"]].fn(rec["meta"]["input"]))
        )
    bad = dict(splits["test"][0], meta={"op": "Z", "op_name": "nope", "input": 1})
    with pytest.raises(KGWorldError):
        recompute_answer(bad)


def test_chain_of_thought_examples() -> None:
    assert build_target(OPERATIONS["B"], 328) == (
        "Digits of 328: 3, 2, 8.\n"
        "Smallest digit: 2.\n"
        "Squared deviations from 2: (3-2)^2 = 1, (2-2)^2 = 0, (8-2)^2 = 36.\n"
        "Sum: 1 + 0 + 36 = 37.\n"
        "B(328) = 37\n\n\\boxed{37}"
    )
    assert "Alternating sum (starting with +): 1 - 81 = -80." in build_target(OPERATIONS["C"], 19)
    assert "Rotations: 120, 201, 012." in build_target(OPERATIONS["H"], 120)
    assert "No non-zero digits, so the product is 1." in build_target(OPERATIONS["K"], 0)
    # every hard op renders for edge inputs and ends with its own value
    for label in "ABCDEFGHIJK":
        for x in (0, 5, 10, 99999):
            assert build_target(OPERATIONS[label], x).endswith(
                f"\\boxed{{{OPERATIONS[label].fn(x)}}}"
            )


def test_other_seeds_and_labels() -> None:
    config = KGFuncConfig(train_ops=list("AIJK"), train_size=10, test_per_op=3, splits=["test"])
    out = kgfunc_splits(config, 7)
    assert list(out) == ["test"]
    assert [rec["meta"]["op"] for rec in out["test"]] == list("AAAIIIJJJKKK")
    # test is the same whether or not train is also written
    both = kgfunc_splits(KGFuncConfig(train_ops=list("AIJK"), train_size=10, test_per_op=3), 7)
    assert both["test"] == out["test"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"train_ops": ["B", "Z"]},
        {"unseen_ops": ["a", "zz"]},
        {"max_input": 20, "train_size": 100, "splits": ["train"]},  # 21 values minus 1 and 2
        {"max_input": 20, "train_size": 17, "test_per_op": 1, "splits": ["test"]},  # 2 left
        {"max_input": 5, "unseen_per_op": 1, "splits": ["unseen"]},  # 20 ops, 4 inputs
        {"train_ops": [], "splits": ["train"]},
    ],
)
def test_bad_configs_raise(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        kgfunc_splits(KGFuncConfig(**kwargs), SEED)


def test_dense_request_fills_the_pool() -> None:
    config = KGFuncConfig(max_input=20, train_size=19, train_ops=["B"], splits=["train"])
    inputs = sorted(rec["meta"]["input"] for rec in kgfunc_splits(config, SEED)["train"])
    assert inputs == [x for x in range(21) if x not in FEW_SHOT_INPUTS]


def test_unknown_label_message_lists_known() -> None:
    with pytest.raises(ConfigError, match="known labels: A B C"):
        kgfunc_splits(KGFuncConfig(train_ops=["Q"]), SEED)
