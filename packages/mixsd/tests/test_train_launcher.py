"""``mixsd run`` with ``train: {launcher: torchrun, nproc: 2}``: each training unit runs
data-parallel in 2 processes through the same unit logic (reused when current), and the launcher
settings are checked when the config loads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mixsd.cli import app

REPO = Path(__file__).resolve().parents[3]


def _config(tmp: Path, model: Path, train: dict[str, Any], **changes: Any) -> Path:
    config: dict[str, Any] = {
        "out": str(tmp / "run"),
        "model": str(model),
        "world": {"preset": "small", "kgfunc": {"enabled": False}},
        "data": {"split": "kgfact/train", "limit": 4, "indomain": ["paraphrase"]},
        "methods": ["base", "sft"],
        "train": {
            "num_train_epochs": 1,
            "save_steps": 1,
            "per_device_train_batch_size": 1,
            "global_batch_size": 2,
            "warmup_steps": 0,
            "learning_rate": 1e-3,
            "eval_limit": 2,
            "eval_max_new_tokens": 4,
            "logging_steps": 1,
            **train,
        },
        "eval": {"suites": ["indomain"], "limit": 2, "indomain_max_new_tokens": 4},
        "fisher": None,
        "report": False,
        **changes,
    }
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(autouse=True)
def accept_any_reply() -> Iterator[None]:
    import kgworld

    with kgworld.VERIFIERS.temporary("any", lambda reply, answer: True):
        yield


@pytest.mark.parametrize(
    ("train", "error"),
    [
        ({"launcher": "slurm"}, r"field 'train\.launcher': unknown launcher 'slurm'"),
        ({"launcher": "torchrun"}, r"field 'train\.nproc': launcher torchrun needs nproc"),
        ({"launcher": "torchrun", "nproc": 0}, r"field 'train\.nproc': must be >= 1, got 0"),
        (
            {"launcher": "torchrun", "nproc": 2, "accelerate_config": "x.yaml"},
            r"field 'train\.accelerate_config': only launcher 'accelerate'",
        ),
        (
            {"launcher": "accelerate", "accelerate_config": "missing.yaml"},
            r"field 'train\.accelerate_config': missing\.yaml not found",
        ),
    ],
)
def test_bad_launcher_fails_at_load(
    tmp_path: Path, tiny_model_dir: Path, train: dict[str, Any], error: str
) -> None:
    from mixsd._run_config import load_run_config
    from mixsd_base import UserError

    with pytest.raises(UserError, match=error):
        load_run_config(_config(tmp_path, tiny_model_dir, train))


def test_fsdp_config_refuses_on_policy_methods_at_load(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    from mixsd._run_config import load_run_config
    from mixsd_base import UserError

    fsdp_config = str(REPO / "configs" / "accelerate" / "fsdp-8b.yaml")
    fsdp = {"launcher": "accelerate", "accelerate_config": fsdp_config}
    config = load_run_config(_config(tmp_path, tiny_model_dir, fsdp))  # sft alone: fine
    assert config.train.launcher == "accelerate" and "launcher" not in config.train.options
    with_opsd = _config(tmp_path, tiny_model_dir, fsdp, methods=["base", "sft", "opsd"])
    with pytest.raises(UserError, match=r"accelerate_config': FSDP cannot train opsd"):
        load_run_config(with_opsd)


@pytest.mark.slow
def test_torchrun_units_train_data_parallel_and_are_reused(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    runner = CliRunner()
    config = _config(tmp_path, tiny_model_dir, {"launcher": "torchrun", "nproc": 2})
    first = runner.invoke(app, ["run", str(config), "--quiet"])
    assert first.exit_code == 0, first.output
    unit = tmp_path / "run" / "train" / "sft"
    manifest = json.loads((unit / "manifest.json").read_text())
    # 4 facts, 2 per optimizer step over 2 processes of 1 each: 2 steps, no accumulation.
    assert manifest["status"] == "complete" and manifest["global_step"] == 2
    assert manifest["config"]["gradient_accumulation_steps"] == 1
    assert sorted(p.name for p in (unit / "checkpoint-2").glob("rng_state*")) == [
        "rng_state_0.pth",
        "rng_state_1.pth",
    ]
    selection = json.loads((unit / "selection.json").read_text())
    assert selection["step"] in (1, 2) and len(selection["curve"]) == 2
    # The unit's inputs do not name the launcher: a second run reuses it.
    second = runner.invoke(app, ["run", str(config), "--quiet"])
    assert second.exit_code == 0, second.output
    rows = [line.split() for line in second.output.splitlines()]
    assert ["train", "sft", "reused"] in [r[:3] for r in rows]
