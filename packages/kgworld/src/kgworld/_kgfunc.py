"""KGFunc: learn an opaque digit operation from ten input-output examples.

Each operation maps an integer in [0, max_input] to an integer computed from its decimal
digits (the digits of 0 are [0]). Prompts name an operation only by a one-letter label, so
the model has to infer the rule from the examples. Training ops (uppercase) come with a
step-by-step target whose every number is computed here; the familiar "unseen" ops
(lowercase) get a bare answer and serve as a forgetting probe.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from math import prod
from typing import Any

from kgworld._config import ConfigError, KGFuncConfig, KGWorldError
from kgworld._rng import derived_rng

# Shared by every op and split so the only thing that changes between prompts is the rule.
FEW_SHOT_INPUTS: tuple[int, ...] = (328, 41, 45, 87397, 242, 1, 9935, 21395, 2, 2679)
PRIMES = frozenset({2, 3, 5, 7})


@dataclass(frozen=True)
class Operation:
    """One digit operation. ``chain_of_thought(x)`` returns the reasoning steps only (no
    final line); it is ``None`` for ops whose target is the bare answer."""

    label: str
    name: str
    fn: Callable[[int], int]
    chain_of_thought: Callable[[int], str] | None = None


# -----------------------------------------------------------------------------
# digit helpers


def digits(x: int) -> list[int]:
    """Decimal digits of ``x`` from left to right; ``digits(0) == [0]``."""
    return [int(c) for c in str(x)]


def _join(values: list[int], sep: str = ", ") -> str:
    return sep.join(str(v) for v in values)


def _digits_line(x: int) -> str:
    return f"Digits of {x}: {_join(digits(x))}."


def _sum_line(terms: list[int], label: str = "Sum") -> str:
    # "Sum: 9." reads better than "Sum: 9 = 9" for single-digit inputs.
    if len(terms) == 1:
        return f"{label}: {terms[0]}."
    return f"{label}: {_join(terms, ' + ')} = {sum(terms)}."


def _nonzero_product(x: int) -> int:
    return prod(d for d in digits(x) if d != 0)  # prod of nothing is 1, as the ops require


def _rotations(x: int) -> list[str]:
    s = str(x)
    return [s[i:] + s[:i] for i in range(len(s))]


def _running_max(ds: list[int]) -> list[int]:
    return list(accumulate(ds, max))


def _alternating_terms(ds: list[int]) -> list[int]:
    return [d * d if i % 2 == 0 else -d * d for i, d in enumerate(ds)]


# Per-digit terms shared by the value functions and the chains of thought, so the numbers
# a target shows are by construction the ones its answer is computed from.
def _sq_devs(ds: list[int]) -> list[int]:
    lo = min(ds)
    return [(d - lo) ** 2 for d in ds]


def _prime_terms(ds: list[int]) -> list[int]:
    return [d * d if d in PRIMES else d for d in ds]


def _pair_products(ds: list[int]) -> list[int]:
    return [a * b for a, b in zip(ds, reversed(ds), strict=True)]


def _triangles(ds: list[int]) -> list[int]:
    return [d * (d + 1) // 2 for d in ds]


def _powers(ds: list[int]) -> list[int]:
    return [d**i for i, d in enumerate(ds, start=1)]


def _variance_times_n(x: int) -> int:
    ds = digits(x)
    return len(ds) * sum(d * d for d in ds) - sum(ds) ** 2


def _digital_root(x: int) -> int:
    return 0 if x == 0 else 1 + (x - 1) % 9


# -----------------------------------------------------------------------------
# chains of thought: the steps only; build_target adds "L(x) = y" and the box


def _steps(fn: Callable[[int], list[str]]) -> Callable[[int], str]:
    """Every chain starts by listing the digits; the op adds its own lines after that."""
    return lambda x: "\n".join([_digits_line(x), *fn(x)])


@_steps
def _cot_a(x: int) -> list[str]:
    s, m = sum(digits(x)), max(digits(x))
    return [
        _sum_line(digits(x), "Digit sum"),
        f"Largest digit: {m}.",
        f"Product: {s} * {m} = {s * m}.",
    ]


@_steps
def _cot_b(x: int) -> list[str]:
    ds = digits(x)
    lo = min(ds)
    devs = ", ".join(f"({d}-{lo})^2 = {v}" for d, v in zip(ds, _sq_devs(ds), strict=True))
    return [
        f"Smallest digit: {lo}.",
        f"Squared deviations from {lo}: {devs}.",
        _sum_line(_sq_devs(ds)),
    ]


@_steps
def _cot_c(x: int) -> list[str]:
    terms = _alternating_terms(digits(x))
    signed = str(terms[0]) + "".join(f" - {-t}" if t < 0 else f" + {t}" for t in terms[1:])
    total = sum(terms)
    return [
        f"Squares: {_join([abs(t) for t in terms])}.",
        f"Alternating sum (starting with +): {signed} = {total}.",
        f"Absolute value: |{total}| = {abs(total)}.",
    ]


@_steps
def _cot_d(x: int) -> list[str]:
    ds = digits(x)
    lines = [
        f"{d} is prime, contributes {d}^2 = {d * d}."
        if d in PRIMES
        else f"{d} is not prime, contributes {d}."
        for d in ds
    ]
    return [*lines, _sum_line(_prime_terms(ds))]


@_steps
def _cot_e(x: int) -> list[str]:
    ds = digits(x)
    rev = ds[::-1]
    products = ", ".join(f"{a}*{b} = {a * b}" for a, b in zip(ds, rev, strict=True))
    return [
        f"Reversed: {_join(rev)}.",
        f"Pairwise products: {products}.",
        _sum_line(_pair_products(ds)),
    ]


@_steps
def _cot_f(x: int) -> list[str]:
    maxima = _running_max(digits(x))
    return [f"Running maxima: {_join(maxima)}.", _sum_line(maxima)]


@_steps
def _cot_g(x: int) -> list[str]:
    ds = digits(x)
    tri = _triangles(ds)
    steps = ", ".join(f"T({d}) = {d}*{d + 1}/2 = {t}" for d, t in zip(ds, tri, strict=True))
    return [f"Triangular numbers: {steps}.", _sum_line(tri)]


@_steps
def _cot_h(x: int) -> list[str]:
    rotations = _rotations(x)
    best = min(rotations, key=int)
    return [
        f"Rotations: {', '.join(rotations)}.",
        f"Smallest rotation: {best}, which as an integer is {int(best)}.",
    ]


@_steps
def _cot_i(x: int) -> list[str]:
    ds = digits(x)
    pw = _powers(ds)
    steps = ", ".join(f"{d}^{i} = {p}" for i, (d, p) in enumerate(zip(ds, pw, strict=True), 1))
    return [f"Powers by position: {steps}.", _sum_line(pw)]


@_steps
def _cot_j(x: int) -> list[str]:
    ds = digits(x)
    n, sq, s = len(ds), sum(d * d for d in ds), sum(ds)
    return [
        f"Number of digits: n = {n}.",
        _sum_line([d * d for d in ds], "Sum of squares"),
        _sum_line(ds, "Digit sum"),
        f"n * {sq} - {s}^2 = {n * sq} - {s * s} = {n * sq - s * s}.",
    ]


@_steps
def _cot_k(x: int) -> list[str]:
    nonzero = [d for d in digits(x) if d != 0]
    p = prod(nonzero)
    if not nonzero:
        return ["No non-zero digits, so the product is 1.", f"{x} mod 1 = 0."]
    return [
        f"Non-zero digits: {_join(nonzero)}; product: {_join(nonzero, ' * ')} = {p}.",
        f"{x} mod {p} = {x % p}.",
    ]


# -----------------------------------------------------------------------------
# the operation table


_HARD: list[tuple[str, str, Callable[[int], int], Callable[[int], str]]] = [
    ("A", "digit_sum_max_product", lambda x: sum(digits(x)) * max(digits(x)), _cot_a),
    ("B", "digit_min_squared_deviation_sum", lambda x: sum(_sq_devs(digits(x))), _cot_b),
    (
        "C",
        "digit_squared_alternating_sum",
        lambda x: abs(sum(_alternating_terms(digits(x)))),
        _cot_c,
    ),
    ("D", "digit_prime_conditional_sum", lambda x: sum(_prime_terms(digits(x))), _cot_d),
    ("E", "digit_convolution_dot", lambda x: sum(_pair_products(digits(x))), _cot_e),
    ("F", "digit_cumulative_max_sum", lambda x: sum(_running_max(digits(x))), _cot_f),
    ("G", "digit_triangular_sum", lambda x: sum(_triangles(digits(x))), _cot_g),
    ("H", "digit_rotation_minimum", lambda x: min(int(r) for r in _rotations(x)), _cot_h),
    ("I", "digit_power_staircase", lambda x: sum(_powers(digits(x))), _cot_i),
    ("J", "digit_variance_times_n", _variance_times_n, _cot_j),
    ("K", "number_mod_digit_product", lambda x: x % _nonzero_product(x), _cot_k),
]

_FAMILIAR: list[tuple[str, str, Callable[[int], int]]] = [
    ("a", "digit_sum", lambda x: sum(digits(x))),
    ("b", "digit_product", _nonzero_product),
    ("c", "digit_count", lambda x: len(digits(x))),
    ("d", "max_digit", lambda x: max(digits(x))),
    ("e", "min_digit", lambda x: min(digits(x))),
    ("f", "first_digit", lambda x: digits(x)[0]),
    ("g", "last_digit", lambda x: digits(x)[-1]),
    ("h", "digit_range", lambda x: max(digits(x)) - min(digits(x))),
    ("i", "reverse_number", lambda x: int(str(x)[::-1])),
    ("j", "sum_first_last", lambda x: digits(x)[0] + digits(x)[-1]),
    ("k", "even_digit_count", lambda x: sum(d % 2 == 0 for d in digits(x))),
    ("l", "odd_digit_count", lambda x: sum(d % 2 == 1 for d in digits(x))),
    ("m", "num_distinct_digits", lambda x: len(set(digits(x)))),
    ("n", "digital_root", _digital_root),
    ("o", "sum_digit_squares", lambda x: sum(d * d for d in digits(x))),
    ("p", "ascending_sort", lambda x: int("".join(sorted(str(x))))),
    ("q", "descending_sort", lambda x: int("".join(sorted(str(x), reverse=True)))),
    ("r", "num_zero_digits", lambda x: str(x).count("0")),
    ("s", "double_digit_sum", lambda x: 2 * sum(digits(x))),
    ("t", "product_first_last", lambda x: digits(x)[0] * digits(x)[-1]),
]

OPERATIONS: dict[str, Operation] = {
    **{label: Operation(label, name, fn, cot) for label, name, fn, cot in _HARD},
    **{label: Operation(label, name, fn) for label, name, fn in _FAMILIAR},
}


# -----------------------------------------------------------------------------
# prompts and targets


def build_prompt(op: Operation, x: int, instruction: str) -> str:
    examples = "\n\n".join(f"Input: {q}\nOutput: {op.fn(q)}" for q in FEW_SHOT_INPUTS)
    prompt = (
        f"Work out the rule of function {op.label} from the input-output examples below, "
        f"then apply it to a new input.\n\n"
        f"Examples:\n{examples}\n\n"
        f"Question:\nWhat is the output of {op.label}({x})?"
    )
    return f"{prompt}\n\n{instruction}" if instruction else prompt


def build_target(op: Operation, x: int) -> str:
    answer = op.fn(x)
    if op.chain_of_thought is None:
        return f"The answer is {answer}.\n\n\\boxed{{{answer}}}"
    return f"{op.chain_of_thought(x)}\n{op.label}({x}) = {answer}\n\n\\boxed{{{answer}}}"


def _record(op: Operation, x: int, split: str, instruction: str) -> dict[str, Any]:
    return {
        "id": "",  # numbered once the split's final order is known
        "prompt": build_prompt(op, x, instruction),
        "target": build_target(op, x),
        "answer": str(op.fn(x)),
        "context": None,
        "split": split,
        "meta": {"op": op.label, "op_name": op.name, "input": x},
    }


def recompute_answer(record: dict[str, Any]) -> str:
    """The answer implied by ``record["meta"]``, for ``kgworld check``."""
    meta = record.get("meta") or {}
    op = OPERATIONS.get(meta.get("op", ""))
    if op is None or op.name != meta.get("op_name"):
        raise KGWorldError(f"{record.get('id')}: unknown KGFunc op {meta.get('op')!r}")
    x = meta.get("input")
    if isinstance(x, bool) or not isinstance(x, int) or x < 0:
        raise KGWorldError(
            f"{record.get('id')}: KGFunc input must be a non-negative int, got {x!r}"
        )
    return str(op.fn(x))


# -----------------------------------------------------------------------------
# splits


def _operations(labels: list[str], field: str) -> list[Operation]:
    unknown = [label for label in labels if label not in OPERATIONS]
    if unknown:
        raise ConfigError(
            f"kgfunc.{field}: unknown operation label(s) {', '.join(map(repr, unknown))}; "
            f"known labels: {' '.join(OPERATIONS)}"
        )
    return [OPERATIONS[label] for label in labels]


def _draw_inputs(
    rng: random.Random, k: int, max_input: int, exclude: set[int], what: str
) -> list[int]:
    """``k`` distinct inputs from [0, max_input] minus ``exclude``, in draw order."""
    available = max_input + 1 - sum(1 for e in exclude if 0 <= e <= max_input)
    if k > available:
        raise ConfigError(
            f"kgfunc: {what} needs {k} distinct inputs but only {available} of "
            f"[0, {max_input}] are left after exclusions; raise kgfunc.max_input or lower the size"
        )
    if 2 * k > available:
        # Dense request: rejection sampling would crawl, so sample the explicit pool.
        pool = [x for x in range(max_input + 1) if x not in exclude]
        return rng.sample(pool, k)
    seen, chosen = set(exclude), []
    while len(chosen) < k:
        x = rng.randint(0, max_input)
        if x not in seen:
            seen.add(x)
            chosen.append(x)
    return chosen


def _per_op_counts(total: int, n_ops: int) -> list[int]:
    base, extra = divmod(total, n_ops)
    return [base + (i < extra) for i in range(n_ops)]


def _inputs_by_op(
    rng: random.Random, counts: list[int], max_input: int, exclude: set[int], what: str
) -> list[list[int]]:
    flat = _draw_inputs(rng, sum(counts), max_input, exclude, what)
    starts = [sum(counts[:i]) for i in range(len(counts))]
    return [flat[s : s + c] for s, c in zip(starts, counts, strict=True)]


def _records(
    ops: list[Operation], inputs: list[list[int]], split: str, instruction: str
) -> list[dict[str, Any]]:
    return [
        _record(op, x, split, instruction) for op, xs in zip(ops, inputs, strict=True) for x in xs
    ]


def _number(records: list[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    for i, rec in enumerate(records):
        rec["id"] = f"kgfunc-{split}-{i:06d}"
    return records


def kgfunc_splits(config: KGFuncConfig, seed: int) -> dict[str, list[dict[str, Any]]]:
    """Build the splits named in ``config.splits``; inputs are distinct within each split.

    Train inputs are drawn even when only ``test`` is requested, so the test split is the
    same whichever other splits are written. Train is shuffled; test and unseen stay grouped
    by op in config order.
    """
    train_ops = _operations(config.train_ops, "train_ops")
    unseen_ops = _operations(config.unseen_ops, "unseen_ops")
    wanted, few_shot = set(config.splits), set(FEW_SHOT_INPUTS)
    out: dict[str, list[dict[str, Any]]] = {}
    train_inputs: list[list[int]] = []
    if wanted & {"train", "test"}:
        if not train_ops:
            raise ConfigError("kgfunc.train_ops is empty but the train/test splits are requested")
        counts = _per_op_counts(config.train_size, len(train_ops))
        rng = derived_rng(seed, "kgfunc", "train-inputs")
        train_inputs = _inputs_by_op(rng, counts, config.max_input, few_shot, "train")
    if "train" in wanted:
        records = _records(train_ops, train_inputs, "train", config.instruction)
        derived_rng(seed, "kgfunc", "train-order").shuffle(records)
        out["train"] = _number(records, "train")
    if "test" in wanted:
        counts = [config.test_per_op] * len(train_ops)
        exclude = few_shot.union(*train_inputs)
        rng = derived_rng(seed, "kgfunc", "test-inputs")
        inputs = _inputs_by_op(rng, counts, config.max_input, exclude, "test")
        out["test"] = _number(_records(train_ops, inputs, "test", config.instruction), "test")
    if "unseen" in wanted:
        counts = [config.unseen_per_op] * len(unseen_ops)
        rng = derived_rng(seed, "kgfunc", "unseen-inputs")
        inputs = _inputs_by_op(rng, counts, config.max_input, few_shot, "unseen")
        out["unseen"] = _number(
            _records(unseen_ops, inputs, "unseen", config.instruction), "unseen"
        )
    return out
