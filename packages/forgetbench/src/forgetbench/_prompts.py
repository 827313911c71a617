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

# The user turns of the authors' capability evaluation, word for word (FACTS §5 paraphrases them).
# Math: an instruction to reason and box the answer, the problem as given, a closing cue.
_MATH = (
    "Think step-by-step to solve the following problem. "
    "Output your answer inside of \\boxed{} tags.:\n"
    "{problem}\n\n"
    "Let's think step-by-step"
)

# HumanEval: lm-eval's humaneval_chat wording, the original prompt as given inside a python fence.
_CODE = (
    "Complete the following Python function. "
    "Return ONLY the complete function inside a ```python code block, nothing else.\n\n"
    "```python\n{prompt}\n```\n"
)

# MMLU (generative): the subject line asking for the letter in a box.
_MMLU_BOXED_HEAD = (
    "The following are multiple choice questions (with answers) about {subject}. "
    "Put your final answer inside \\boxed{} as one of A, B, C, or D.\n\n"
)


def math_prompt(problem: str) -> str:
    return _MATH.replace("{problem}", problem)


def code_prompt(prompt: str) -> str:
    return _CODE.replace("{prompt}", prompt)


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
        head = _MMLU_BOXED_HEAD.replace("{subject}", subject)
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
