"""forgetbench's own fixture: the user files of the benchmarks no package ships. The tiny model, a
small world and the JSONL writer come from the shared plugin, mixsd_core.pytest_plugin (which
also keeps the hub offline)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def data_folder(tmp_path: Path, write_jsonl: Callable[..., Path]) -> Path:
    """User files for the benchmarks no package ships, in the three upstream schemas."""
    write_jsonl(
        tmp_path / "math500.jsonl",
        [
            {"problem": "What is 1/2 + 0?", "answer": "\\frac{1}{2}", "unique_id": "test/a/1.json"},
            {"problem": "Compute 2+3.", "answer": "5", "unique_id": "test/a/2.json"},
        ],
    )
    write_jsonl(
        tmp_path / "aime24.jsonl",
        [{"id": 60, "problem": "Find x if x = 204.", "answer": "204", "year": "2024"}],
    )
    write_jsonl(
        tmp_path / "gsm8k.jsonl",
        [{"question": "Tom has 3 apples and buys 1,000 more.", "answer": "3+1000\n#### 1,003"}],
    )
    return tmp_path
