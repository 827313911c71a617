"""The Typer app: train, select, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mixsd_train.cli import app

runner = CliRunner()

TINY = [
    "max_steps=2",
    "save_steps=1",
    "global_batch_size=2",
    "per_device_train_batch_size=2",
    "report_to=none",
    "eval_limit=2",
    "eval_max_new_tokens=4",
    "disable_tqdm=true",
]


def test_train_then_select(tiny_model_dir: Path, records_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("learning_rate: 1e-3\nwarmup_steps: 0\n")
    out = tmp_path / "runs" / "sft"
    args = ["train", "--method", "sft", "--model", str(tiny_model_dir)]
    args += ["--data", str(records_file), "--out", str(out), "--config", str(config)]
    for item in TINY:
        args += ["--set", item]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "sft 2 steps" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["learning_rate"] == 1e-3
    assert manifest["config"]["max_steps"] == 2
    result = runner.invoke(app, ["select", str(out)])
    assert result.exit_code == 0, result.output
    assert "checkpoint-" in result.output and "first-peak" in result.output
    # the same command again refuses to overwrite; --resume finds the run complete
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "--resume" in result.output
    result = runner.invoke(app, [*args, "--resume"])
    assert result.exit_code == 0, result.output


def test_errors_are_one_line(records_file: Path, tmp_path: Path) -> None:
    base = ["train", "--data", str(records_file), "--out", str(tmp_path / "r")]
    result = runner.invoke(app, [*base, "--method", "dpo"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: unknown method 'dpo'; known: sft, mixsd, mixsd-kl, opsd, opsd-nll"
    ]
    result = runner.invoke(app, [*base, "--method", "opsd", "--set", "top_k=0"])
    assert result.exit_code == 1 and "top_k must be >= 1" in result.output
    result = runner.invoke(app, [*base, "--method", "sft", "--set", "topk=3"])
    assert result.exit_code == 1 and "unknown SFTConfig key 'topk'" in result.output
    result = runner.invoke(app, ["select", str(tmp_path)])
    assert result.exit_code == 1 and "no trainer_state.json" in result.output
