"""mixsd-train's own fixtures: a records file, a rollout file of the tiny model and small trainer
configs. The tiny model, records and JSONL writer come from the shared plugin,
mixsd_core.pytest_plugin."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def records_file(
    tmp_path_factory: pytest.TempPathFactory, make_records: Callable[..., Any], write_jsonl: Any
) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "train.jsonl", make_records())


@pytest.fixture(scope="session")
def rollout_file(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, records_file: Path
) -> Path:
    """Mixed rollouts of the tiny model; a verifier that passes every other record, so the
    file holds verified and unverified records."""
    from mixsd_core import RolloutConfig, run_rollout

    out = tmp_path_factory.mktemp("rollouts") / "mix.jsonl"
    flip = iter(range(10_000))
    config = RolloutConfig(
        model=str(tiny_model_dir),
        data=str(records_file),
        out=str(out),
        alpha=0.5,
        max_new_tokens=16,
        max_retries=0,
    )
    run_rollout(config, verifier=lambda reply, answer: next(flip) % 2 == 0, progress=False)
    return out


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
