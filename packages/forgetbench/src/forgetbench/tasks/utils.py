"""lm-eval glue for the forgetbench tasks: local-file datasets and per-sample scoring.

lm-eval imports this file by path (``!function utils.NAME``), so everything real lives in the
forgetbench package; these functions only adapt it to lm-eval's calling conventions. Dataset
loaders receive the task's ``metadata`` (plus anything given with ``--metadata``): a key
``<name>_file`` (e.g. ``math500_file``) points a user-file benchmark at a JSONL file, and
``data_dir`` overrides the forgetbench data folder.
"""

from __future__ import annotations

from typing import Any

from forgetbench._data import load_benchmark
from forgetbench._prompts import LETTERS, code_prompt, math_prompt, mmlu_prompt, mmlu_split
from forgetbench._sandbox import code_execution_allowed, run_humaneval
from forgetbench._scoring import extract_code, score_math, score_mmlu


def _as_dataset(rows: list[dict[str, Any]]) -> Any:
    from datasets import Dataset, DatasetDict

    return DatasetDict({"test": Dataset.from_list(rows)})


def _rows(name: str, meta: dict[str, Any]) -> list[dict[str, Any]]:
    key = name.replace("-", "_") + "_file"
    return load_benchmark(name, path=meta.get(key), folder=meta.get("data_dir"))


def _math(name: str, meta: dict[str, Any]) -> Any:
    return _as_dataset([{**r, "prompt": math_prompt(r["problem"])} for r in _rows(name, meta)])


def aime24(**meta: Any) -> Any:
    return _math("aime24", meta)


def math500(**meta: Any) -> Any:
    return _math("math500", meta)


def gsm8k(**meta: Any) -> Any:
    return _math("gsm8k", meta)


def gsm8k_100(**meta: Any) -> Any:
    return _math("gsm8k-100", meta)


def humaneval(**meta: Any) -> Any:
    return _as_dataset(
        [{**r, "chat_prompt": code_prompt(r["prompt"])} for r in _rows("humaneval", meta)]
    )


def mmlu(**meta: Any) -> Any:
    shots, scored = mmlu_split(_rows("mmlu", meta), int(meta.get("mmlu_shots", 5)))
    return _as_dataset(
        [
            {
                **r,
                "prompt": mmlu_prompt(r, shots[r["subject"]]),
                "prompt_ll": mmlu_prompt(r, shots[r["subject"]], boxed=False),
                "label": LETTERS.index(r["answer"]),
            }
            for r in scored
        ]
    )


def every_sample(resps: Any, docs: Any) -> Any:
    """The generative tasks' filter: keep all ``repeats`` samples of each request (lm-eval's
    default, take_first, would score the first alone)."""
    return resps


def _replies(results: list[Any]) -> list[str]:
    """The samples of one item: ``every_sample`` hands them over as one list per request."""
    return [r for item in results for r in (item if isinstance(item, list) else [item])]


# Each scorer returns the mean over the item's samples (the paper's AIME: 16 of them).
def process_math(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    replies = _replies(results)
    return {"exact_match": sum(score_math(r, doc["answer"]) for r in replies) / len(replies)}


def process_mmlu(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    replies = _replies(results)
    return {"acc": sum(score_mmlu(r, doc["answer"]) for r in replies) / len(replies)}


def process_humaneval(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    outcomes = run_humaneval(
        [(doc, extract_code(r)) for r in _replies(results)], allow=code_execution_allowed()
    )
    return {"pass@1": sum(o["passed"] for o in outcomes) / len(outcomes)}
