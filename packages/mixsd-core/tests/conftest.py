"""Shared fixtures: one tiny random chat model per test session, built offline in about a second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from mixsd_core.testing import build_tiny_model

# Tiny matrices: thread hand-offs cost more than they save, most of all on a busy 2-core box.
torch.set_num_threads(1)

# Questions of different lengths and kinds: their greedy continuations stop at different steps.
QUESTIONS = (
    "Who employs Zorvath Kellen?",
    "Where does Mira Solend reside?",
    "What is the value of A(328)?",
    "Name the company that Quellport hosts.",
    "Compute 3 + 4 and explain.",
    "Who founded Ormavel Dynamics?",
    "Is the sky blue over Quellport?",
    "Tell me about B(12).",
)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-chat") / "model")


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir: Path) -> tuple[Any, Any]:
    """(model, tokenizer) loaded the way users load a folder: safetensors only, eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, use_safetensors=True)
    return model.eval(), AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def questions() -> tuple[str, ...]:
    return QUESTIONS


@pytest.fixture(scope="session")
def make_records() -> Any:
    return _make_records


def _make_records(n: int = len(QUESTIONS)) -> list[dict[str, Any]]:
    """KGFact-shaped records (the last one KGFunc-shaped) over ``QUESTIONS``."""
    records = []
    for i in range(n):
        task = "kgfunc" if i == n - 1 else "kgfact"
        answer = f"Ans{i}"
        records.append(
            {
                "id": f"{task}-{i:06d}",
                "prompt": QUESTIONS[i % len(QUESTIONS)],
                "target": f"The answer is {answer}. \\boxed{{{answer}}}",
                "answer": answer,
                "context": "Quellport is a city." if i == 1 else None,
                "split": "train",
                "meta": {"n": i},
            }
        )
    return records


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run the ``mixsd-core`` console script in-process: ``cli(*args) -> (exit code, out, err)``.

    Through ``main`` (``mixsd_base.run_cli``), so user errors are printed as the console script
    prints them, not caught by a test runner.
    """
    from mixsd_core.cli import main

    monkeypatch.delenv("MIXSD_DEBUG", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()  # drop what came before
        monkeypatch.setattr("sys.argv", ["mixsd-core", *args])
        with pytest.raises(SystemExit) as done:
            main()
        captured = capsys.readouterr()
        return int(done.value.code or 0), captured.out, captured.err

    return run
