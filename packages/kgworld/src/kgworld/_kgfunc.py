"""KGFunc: learn an opaque digit operation from ten input-output examples.

Each operation maps an integer in [0, max_input] to an integer computed from its decimal
digits (the digits of 0 are [0]). Prompts name an operation only by a one-letter label, so
the model has to infer the rule from the examples. Training ops (uppercase) come with a
step-by-step target whose every number is computed here; the familiar "unseen" ops
(lowercase) get a bare answer and serve as a forgetting probe.
"""

from __future__ import annotations

import random
from typing import Any

from kgworld._config import ConfigError, KGFuncConfig, KGWorldError
from kgworld._operations import OPERATIONS, Operation
from kgworld._rng import derived_rng

# Shared by every op and split so the only thing that changes between prompts is the rule.
FEW_SHOT_INPUTS: tuple[int, ...] = (328, 41, 45, 87397, 242, 1, 9935, 21395, 2, 2679)


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
    seen, chosen = set(exclude), list[int]()
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
