"""User-turn prompts for the held-out benchmarks (FACTS §5), shared by the lm-eval tasks and the
reference-loss prompt set. Each returns the text of one user message; the chat template is applied
by whoever generates (lm-eval's ``--apply_chat_template`` or ``forgetbench eval``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "LETTERS",
    "code_prompt",
    "math_prompt",
    "mmlu_prompt",
    "mmlu_split",
]

LETTERS = ("A", "B", "C", "D")

# The paper's math prompt: an instruction to reason and box the answer, the problem, a closing cue.
_MATH = (
    "Solve the following math problem step by step. "
    "Put your final answer within \\boxed{}.\n\n"
    "{problem}\n\n"
    "Let's think step-by-step."
)

# lm-eval's chat wording for HumanEval: the original prompt inside a python fence.
_CODE = (
    "Complete the following Python function. Return only the completed function "
    "in a python code block.\n\n"
    "```python\n{prompt}\n```"
)


def math_prompt(problem: str) -> str:
    return _MATH.replace("{problem}", problem.strip())


def code_prompt(prompt: str) -> str:
    return _CODE.replace("{prompt}", prompt.rstrip())


def _mmlu_block(row: dict[str, Any]) -> str:
    options = "\n".join(f"{L}. {c}" for L, c in zip(LETTERS, row["choices"], strict=True))
    return f"{row['question'].strip()}\n{options}\nAnswer:"


def mmlu_prompt(row: dict[str, Any], shots: Sequence[dict[str, Any]], *, boxed: bool = True) -> str:
    """One user turn: subject line, the shots answered, then the query ending in "Answer:".

    ``boxed`` shots read "Answer: \\boxed{L}" (generative variant); otherwise "Answer: L", the form
    the loglikelihood variant scores its " A" .. " D" continuations against.
    """
    subject = row["subject"]
    if boxed:
        head = (
            f"The following are multiple choice questions (with answers) about {subject}. "
            "Give the letter of the correct answer as your final answer inside \\boxed{}.\n\n"
        )
    else:
        head = f"The following are multiple choice questions (with answers) about {subject}.\n\n"
    solved = [
        f"{_mmlu_block(s)} " + (f"\\boxed{{{s['answer']}}}" if boxed else s["answer"])
        for s in shots
    ]
    return head + "".join(f"{block}\n\n" for block in solved) + _mmlu_block(row)


def mmlu_split(
    rows: Sequence[dict[str, Any]], shots: int = 5
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """No package ships MMLU's dev split: the first ``shots`` test rows of each subject (file
    order) become that subject's fixed shots and are left out of scoring.
    Returns ``(shots by subject, scored rows)``. The scored rows are interleaved round-robin
    over the subjects (each subject's rows in file order), so that a ``--limit`` prefix covers
    every subject instead of the first one alone."""
    by_subject: dict[str, list[dict[str, Any]]] = {}
    rest: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        chosen = by_subject.setdefault(row["subject"], [])
        if len(chosen) < shots:
            chosen.append(row)
        else:
            rest.setdefault(row["subject"], []).append(row)
    queues = list(rest.values())
    scored = [q[k] for k in range(max(map(len, queues), default=0)) for q in queues if k < len(q)]
    return by_subject, scored
