"""Offline fixtures: a tiny random chat model, a small kgworld world, small benchmark files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mixsd_core.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import kgworld

    world = kgworld.generate(kgworld.resolve_config(overrides={"preset": "small", "seed": 0}))
    return world.write(tmp_path_factory.mktemp("world") / "world")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def write_rows():
    """``write_rows(path, rows)``: write JSON Lines (test modules cannot import conftest)."""
    return write_jsonl


@pytest.fixture
def data_folder(tmp_path: Path) -> Path:
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
