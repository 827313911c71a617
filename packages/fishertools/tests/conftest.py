"""fishertools' own fixtures: a small prompt/response file, the tiny model loaded as fishertools
loads a folder (eager attention) and perturbed checkpoints. The tiny model folder, its tokenizer
and the JSONL writer come from the shared plugin, mixsd_core.pytest_plugin."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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


@pytest.fixture(scope="session")
def data_file(tmp_path_factory: pytest.TempPathFactory, write_jsonl: Callable[..., Path]) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "general.jsonl", RECORDS)


@pytest.fixture(scope="session")
def tiny_eager_lm(tiny_model_dir: Path) -> tuple[Any, Any]:
    """(model, tokenizer) of the tiny model, loaded as fishertools loads a folder (eager
    attention, which vmap batches)."""
    from fishertools._models import load_model, load_tokenizer

    return load_model(tiny_model_dir), load_tokenizer(tiny_model_dir)


def perturbed_checkpoint(
    base_dir: Path, out: Path, scale: float, seed: int, pattern: str = ""
) -> Path:
    """A full checkpoint: the tiny model with Gaussian noise of std ``scale`` added to the
    parameters whose name contains ``pattern``."""
    import torch
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
