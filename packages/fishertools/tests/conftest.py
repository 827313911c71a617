"""Shared fixtures: the tiny random chat model of mixsd_core.testing and a small JSONL file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from mixsd_core.testing import build_tiny_model

# Tiny matrices: thread hand-offs cost more than they save, most of all on a busy 2-core box.
torch.set_num_threads(1)

RECORDS = [
    {"prompt": "Who employs Zorvath Kellen?", "response": "Ormavel Dynamics employs him."},
    {"prompt": "Where does Mira Solend reside?", "response": "Mira Solend resides in Quellport."},
    {"prompt": "What is the value of A(328)?", "response": "The digits sum to 13, so 104."},
    {"prompt": "Name a city.", "response": "Quellport."},
    {
        "prompt": "Compute 3 + 4 and explain.",
        "response": "3 + 4 = 7 because four more than three is seven.",
    },
    {"prompt": "Who founded Ormavel Dynamics?", "response": "Zorvath Kellen founded it."},
    {"prompt": "Tell me about B(12).", "response": "B(12) is the product of the digits: 2."},
]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "base", seed=0)


@pytest.fixture(scope="session")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "general.jsonl", RECORDS)


@pytest.fixture(scope="session")
def tiny(tiny_dir: Path) -> tuple[Any, Any]:
    """(model, tokenizer) of the tiny model, loaded as fishertools loads a folder."""
    from fishertools._models import load_model, load_tokenizer

    return load_model(tiny_dir), load_tokenizer(tiny_dir)


def perturbed_checkpoint(
    base_dir: Path, out: Path, scale: float, seed: int, pattern: str = ""
) -> Path:
    """A full checkpoint: the tiny model with Gaussian noise of std ``scale`` added to the
    parameters whose name contains ``pattern``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if pattern in name:
                p.add_(scale * torch.randn(p.shape, generator=gen))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out)
    return out
