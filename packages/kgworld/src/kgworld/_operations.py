"""The KGFunc operations: each maps an integer to an integer computed from its decimal digits
(the digits of 0 are [0]). The hard ones (uppercase labels) carry a chain of thought whose every
number comes from the same per-digit terms as the value; the familiar ones (lowercase) do not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from math import prod

__all__ = ["OPERATIONS", "PRIMES", "Operation", "digits"]

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
    lo, devs = min(ds), _sq_devs(ds)
    steps = ", ".join(f"({d}-{lo})^2 = {v}" for d, v in zip(ds, devs, strict=True))
    return [f"Smallest digit: {lo}.", f"Squared deviations from {lo}: {steps}.", _sum_line(devs)]


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
