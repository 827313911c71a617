"""Every held-out task scores a model that always answers right 1.0, and one that is always
wrong 0.0, through lm-eval and the same ``run_heldout`` path ``forgetbench eval`` takes.

The fake model answers from tables keyed by the exact user turn each task should send (built
from the fixture rows with forgetbench's prompt functions), so a prompt that reaches the model in
another form fails the lookup instead of being scored. ``run_heldout`` wraps the loaded model in
lm-eval's ``HFLM``; the test swaps that class for the fake (no model is loaded at all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import forgetbench
from forgetbench._prompts import LETTERS, code_prompt, math_prompt, mmlu_prompt, mmlu_split

LIMIT = 3  # rows per task: the whole small user files, the first rows of the shipped ones
MATH_BENCHMARKS = ("aime24", "math500", "gsm8k", "gsm8k-100")
WRONG_NUMBER = "-98765"  # no fixture answer is this
USER, ASSISTANT = "<|user|>\n", "\n<|assistant|>\n"  # the fake's own chat template


def table_lm(replies: dict[str, str], letters: dict[str, str]) -> Any:
    """An ``lm_eval`` LM that answers from tables instead of running a network.

    ``replies`` maps a user turn to the generated text; ``letters`` maps a multiple-choice
    context to the choice given the highest loglikelihood.
    """
    from lm_eval.api.model import LM  # here, not at the top: importing lm-eval takes seconds

    class TableLM(LM):
        @property
        def tokenizer_name(self) -> str:  # fingerprints lm-eval's request cache
            return "table-lm"

        def apply_chat_template(
            self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
        ) -> str:
            (turn,) = chat_history  # zero-shot, no system prompt: one user turn
            return USER + turn["content"] + ASSISTANT

        def generate_until(self, requests: list[Any]) -> list[str]:
            out = []
            for request in requests:
                context = request.args[0]
                assert context.startswith(USER) and context.endswith(ASSISTANT), context
                out.append(replies[context[len(USER) : -len(ASSISTANT)]])
            return out

        def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
            out = []
            for request in requests:
                context, continuation = request.args
                chosen = continuation.strip() == letters[context]
                out.append((0.0, True) if chosen else (-10.0, False))
            return out

        def loglikelihood_rolling(self, requests: list[Any]) -> list[float]:
            raise NotImplementedError("no forgetbench task scores rolling loglikelihood")

    return TableLM()


def answer_tables(data_dir: Path, *, right: bool) -> tuple[dict[str, str], dict[str, str]]:
    """``(replies, letters)`` for every fixture row: gold answers, or wrong ones."""
    replies: dict[str, str] = {}
    letters: dict[str, str] = {}
    for name in MATH_BENCHMARKS:
        for row in forgetbench.load_benchmark(name, folder=data_dir):
            answer = row["answer"] if right else WRONG_NUMBER
            replies[math_prompt(row["problem"])] = (
                f"Step by step, the answer is \\boxed{{{answer}}}."
            )
    for row in forgetbench.load_benchmark("humaneval")[:LIMIT]:
        body = row["canonical_solution"] if right else "    raise NotImplementedError\n"
        replies[code_prompt(row["prompt"])] = f"```python\n{row['prompt']}{body}```"
    shots, scored = mmlu_split(forgetbench.load_benchmark("mmlu"))
    for row in scored[:LIMIT]:
        gold = row["answer"]
        letter = gold if right else LETTERS[(LETTERS.index(gold) + 1) % 4]
        replies[mmlu_prompt(row, shots[row["subject"]])] = f"\\boxed{{{letter}}}"
        letters[mmlu_prompt(row, shots[row["subject"]], boxed=False)] = letter
    return replies, letters


def run_all_tasks(lm: Any, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    import lm_eval.models.huggingface

    # run_heldout wraps the loaded model as HFLM(pretrained=model, ...): hand it the fake instead.
    monkeypatch.setattr(lm_eval.models.huggingface, "HFLM", lambda **kwargs: lm)
    scores, samples, _ = forgetbench.run_heldout(
        None,
        None,
        list(forgetbench.HELDOUT_TASKS),
        limit=LIMIT,
        max_new_tokens=32,
        allow_code_exec=True,
        data_dir=data_dir,
    )
    assert {s["task"] for s in samples} == set(forgetbench.HELDOUT_TASKS)
    return scores


@pytest.mark.slow  # lm-eval builds every task, MMLU included, and HumanEval runs code
@pytest.mark.parametrize("right", [True, False], ids=["gold-answers", "wrong-answers"])
def test_every_task_scores_a_fake_model(
    right: bool, data_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # data_folder (conftest): small MATH-500, AIME-2024 and GSM8K user files; the other
    # benchmarks ship in packages and are cut to their first LIMIT rows.
    lm = table_lm(*answer_tables(data_folder, right=right))
    scores = run_all_tasks(lm, data_folder, monkeypatch)
    expected = 1.0 if right else 0.0
    for task, entry in scores.items():
        assert "skipped" not in entry, (task, entry)
        assert entry["n"] >= 1, (task, entry)
        assert entry["score"] == expected, (task, entry)
