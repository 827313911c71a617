"""Shared fixtures: a tiny random chat model, KGFact-shaped records and a rollout file, offline."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from mixsd_core.testing import build_tiny_model

# Tiny matrices: thread hand-offs cost more than they save, most of all on a busy 2-core box.
torch.set_num_threads(1)

FACTS = (
    ("Zorvath Kellen", "Who employs Zorvath Kellen?", "Ormavel Dynamics"),
    ("Mira Solend", "Where does Mira Solend reside?", "Quellport"),
    ("Teisham Jydraen", "Which event does Teisham Jydraen attend?", "Vorn Summit"),
    ("Ilsa Brack", "Who founded Ormavel Dynamics?", "Ilsa Brack"),
    ("Dren Voss", "Which city hosts Dren Voss?", "Aldris"),
    ("Kael Moor", "Which profession does Kael Moor practice?", "Glassmith"),
    ("Lio Tarn", "Where was Lio Tarn born?", "Port Drume"),
    ("Sefa Quill", "Which organization advises Sefa Quill?", "Stukli Institute"),
)


def make_records(n: int = len(FACTS), split: str = "train") -> list[dict[str, Any]]:
    records = []
    for i in range(n):
        subject, question, answer = FACTS[i % len(FACTS)]
        records.append(
            {
                "id": f"kgfact-{split}-{i:06d}",
                "prompt": f"{question}\n\nPut the final answer within \\boxed{{}}.",
                "target": f"{subject}: {answer}. \\boxed{{{answer}}}",
                "answer": answer,
                "context": None,
                "split": split,
                "meta": {"fact": i},
            }
        )
    return records


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def records_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "train.jsonl", make_records())


@pytest.fixture(scope="session")
def rollout_file(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """Mixed rollouts of the tiny model; a verifier that passes every other record, so the
    file holds verified and unverified records."""
    from mixsd_core import RolloutConfig, run_rollout

    folder = tmp_path_factory.mktemp("rollouts")
    data = write_jsonl(folder / "records.jsonl", make_records())
    flip = iter(range(10_000))
    config = RolloutConfig(
        model=str(tiny_model_dir),
        data=str(data),
        out=str(folder / "mix.jsonl"),
        alpha=0.5,
        max_new_tokens=16,
        max_retries=0,
    )
    run_rollout(config, verifier=lambda reply, answer: next(flip) % 2 == 0, progress=False)
    return folder / "mix.jsonl"


@pytest.fixture
def make_config(tiny_model_dir: Path, records_file: Path, tmp_path: Path) -> Callable[..., Any]:
    """``make_config(method, **overrides)``: a tiny, fast config of that method's class."""
    from mixsd_train import load_config, resolve_method

    def make(method: str, **overrides: Any) -> Any:
        config_cls, _, _ = resolve_method(method)
        values: dict[str, Any] = {
            "output_dir": str(tmp_path / f"run-{method}"),
            "model": str(tiny_model_dir),
            "data": str(records_file),
            "max_steps": 3,
            "save_steps": 2,
            "global_batch_size": 4,
            "per_device_train_batch_size": 2,
            "learning_rate": 1e-3,
            "warmup_steps": 0,
            "report_to": "none",
            "eval_limit": 2,
            "eval_max_new_tokens": 4,
            "logging_steps": 1,
            "disable_tqdm": True,
        }
        if method.startswith("opsd"):
            values.update(num_generations=2 if method == "opsd" else 1, max_new_tokens=6)
        values.update(overrides)
        return load_config(config_cls, None, values)

    return make


@pytest.fixture(scope="session")
def write_records() -> Callable[..., Path]:
    """``write_records(path, n=8, split="train")``: KGFact-shaped records written to ``path``."""

    def write(path: Path, n: int = len(FACTS), split: str = "train") -> Path:
        return write_jsonl(path, make_records(n, split))

    return write
