"""The test fixtures every package shares (a pytest plugin; the repository's root conftest.py loads
it for all packages at once).

Session fixtures build the tiny chat model of :mod:`mixsd_core.testing` once per test run, however
many packages are collected. This module imports neither torch nor transformers: only a fixture
that needs them does, so kgworld's tests run without torch.

=====================  ======================================================================
fixture                what it is
=====================  ======================================================================
tiny_model_dir         folder of the tiny random chat model (``build_tiny_model``, seed 0)
tiny_tokenizer         its tokenizer
tiny_lm                ``(model, tokenizer)`` loaded as users load a folder (fp32, CPU, eval mode)
tiny_hybrid_model_dir  the same model with a Qwen3-style ``enable_thinking`` chat template
                       (``HYBRID_THINKING_TEMPLATE``)
tiny_hybrid_lm         ``(model, tokenizer)`` of that folder, loaded as ``tiny_lm``
chat_renders           ``chat_renders(tokenizer) -> list``: from then on, every chat the tokenizer
                       renders as text is appended to the list (undone after the test)
make_records           ``make_records(n=8, split="train")``: records in the shared example schema
write_jsonl            ``write_jsonl(path, rows) -> path``: a JSON Lines file (mixsd_base's writer)
small_world            a small generated kgworld world (preset small, seed 7)
small_world_dir        that world written to a folder
=====================  ======================================================================
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

# (task, question, answer, context): questions of different lengths and kinds, so the tiny model's
# greedy continuations stop at different steps and tests that compare decoding paths can fail.
# One record has a context passage (the retrieval split's shape) and the last is a KGFunc record
# (its own verifier and expert prompt), so a file of all eight exercises both paths.
# Each prompt asks for a boxed answer, as the paper's do.
RECORD_TABLE: tuple[tuple[str, str, str, str | None], ...] = (
    ("kgfact", "Who employs Zorvath Kellen?", "Ormavel Dynamics", None),
    ("kgfact", "Where does Mira Solend reside?", "Quellport", "Quellport is a city."),
    ("kgfact", "Which event does Teisham Jydraen attend?", "Vorn Summit", None),
    ("kgfact", "Name the company that Quellport hosts.", "Stukli Institute", None),
    ("kgfact", "Which profession does Kael Moor practice?", "Glassmith", None),
    ("kgfact", "Who founded Ormavel Dynamics?", "Ilsa Brack", None),
    ("kgfact", "Where was Lio Tarn born?", "Port Drume", None),
    ("kgfunc", "What is the value of A(328)?", "104", None),
)


def make_records(n: int = len(RECORD_TABLE), split: str = "train") -> list[dict[str, Any]]:
    """``n`` records in the shared example schema (id, prompt, target, answer, context, split,
    meta), cycling through ``RECORD_TABLE``; ids are unique and their prefix names the task."""
    records = []
    for i in range(n):
        task, question, answer, context = RECORD_TABLE[i % len(RECORD_TABLE)]
        records.append(
            {
                "id": f"{task}-{split}-{i:06d}",
                "prompt": f"{question}\n\nPut the final answer within \\boxed{{}}.",
                "target": f"The answer is {answer}. \\boxed{{{answer}}}",
                "answer": answer,
                "context": context,
                "split": split,
                "meta": {"fact": i},
            }
        )
    return records


def write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``rows`` as JSON Lines (the project's one writer) and return the path."""
    from mixsd_base import write_jsonl as write

    write(path, rows)
    return Path(path)


def pytest_configure(config: pytest.Config) -> None:
    if importlib.util.find_spec("torch") is None:
        return  # kgworld alone: nothing below concerns it
    # Tiny matrices: thread hand-offs cost more than they save, most of all on a busy 2-core box.
    # torch reads OMP_NUM_THREADS when it is imported, so this costs no torch import here; the
    # command-line tests' subprocesses inherit it.
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:  # imported already (by another plugin): set it directly
        sys.modules["torch"].set_num_threads(1)
    # Tests never reach the hub: a model or data set not on disk is an error, not a download.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mixsd_core.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir: Path) -> tuple[Any, Any]:
    """``(model, tokenizer)``: the tiny model through ``mixsd_core.load_model`` on the CPU (fp32,
    safetensors only, eval mode). Shared by every test of the run: do not change its weights."""
    from mixsd_core import load_model

    return load_model(tiny_model_dir, device="cpu")


@pytest.fixture(scope="session")
def tiny_hybrid_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with a hybrid-thinking template: proves a path renders with thinking off."""
    from mixsd_core.testing import HYBRID_THINKING_TEMPLATE, build_tiny_model

    folder = tmp_path_factory.mktemp("tiny-hybrid") / "model"
    return build_tiny_model(folder, chat_template=HYBRID_THINKING_TEMPLATE)


@pytest.fixture(scope="session")
def tiny_hybrid_lm(tiny_hybrid_model_dir: Path) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of ``tiny_hybrid_model_dir``, loaded as ``tiny_lm`` is."""
    from mixsd_core import load_model

    return load_model(tiny_hybrid_model_dir, device="cpu")


@pytest.fixture
def chat_renders(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], list[str]]:
    """``chat_renders(tokenizer) -> renders``: every chat ``tokenizer`` renders as text from then
    on (whoever calls its ``apply_chat_template``: mixsd_core, lm-eval) is appended to
    ``renders``; the tokenizer is restored after the test."""

    def watch(tokenizer: Any) -> list[str]:
        renders: list[str] = []
        original = tokenizer.apply_chat_template

        def recording(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            if isinstance(out, str):
                renders.append(out)
            return out

        monkeypatch.setattr(tokenizer, "apply_chat_template", recording)
        return renders

    return watch


@pytest.fixture(scope="session", name="make_records")
def make_records_fixture() -> Callable[..., list[dict[str, Any]]]:
    """``make_records(n=8, split="train")``: records in the shared example schema."""
    return make_records


@pytest.fixture(scope="session", name="write_jsonl")
def write_jsonl_fixture() -> Callable[[str | Path, Iterable[Mapping[str, Any]]], Path]:
    """``write_jsonl(path, rows) -> path``: a JSON Lines file."""
    return write_jsonl


@pytest.fixture(scope="session")
def small_world() -> Any:
    import kgworld

    return kgworld.generate(kgworld.resolve_config(overrides={"preset": "small", "seed": 7}))


@pytest.fixture(scope="session")
def small_world_dir(tmp_path_factory: pytest.TempPathFactory, small_world: Any) -> Path:
    return Path(small_world.write(tmp_path_factory.mktemp("worlds") / "small"))
