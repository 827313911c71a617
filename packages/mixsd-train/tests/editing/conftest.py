"""Fixtures for MEMIT: a 4-layer tiny model (an edit needs layers above the edited ones) and
edit-request files written by hand in the kgworld ``edit/train.jsonl`` shape."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mixsd_core.testing import build_tiny_model

REWRITES = (
    ("{} is employed by", "Zorvath Kellen", "Ormavel Dynamics", "Stukli Institute"),
    ("{} resides in", "Mira Solend", "Quellport", "Aldris"),
    ("{} was born in", "Lio Tarn", "Port Drume", "Quellport"),
)


def edit_record(i: int, prompt: str, subject: str, new: str, old: str | None) -> dict[str, Any]:
    return {
        "id": f"edit-{i:06d}",
        "prompt": f"Question about {subject}?",
        "target": f"{prompt.replace('{}', subject)} {new}. \\boxed{{{new}}}",
        "answer": new,
        "context": None,
        "split": "edit",
        "meta": {
            "rewrite": {"prompt": prompt, "subject": subject, "target_new": new, "target_true": old}
        },
    }


@pytest.fixture(scope="session")
def edit_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A smaller init than the default tiny model (0.3): its hidden states then have the
    # moderate norms of a trained model, so a clamped residual can move the next token.
    folder = tmp_path_factory.mktemp("tiny-edit") / "model"
    return build_tiny_model(folder, num_layers=4, hidden_size=128, init_std=0.1)


@pytest.fixture(scope="session")
def make_edit() -> Callable[..., dict[str, Any]]:
    """``make_edit(i, prompt, subject, new, old)``: one edit-request record."""
    return edit_record


@pytest.fixture
def write_edits(tmp_path: Path, write_jsonl: Callable[..., Path]) -> Callable[..., Path]:
    """``write_edits(n=1, name="edits.jsonl", records=None)``: an edit-request file in tmp_path."""

    def write(n: int = 1, name: str = "edits.jsonl", records: list[Any] | None = None) -> Path:
        if records is None:
            records = [edit_record(i, *REWRITES[i % len(REWRITES)]) for i in range(n)]
        return write_jsonl(tmp_path / name, records)

    return write
