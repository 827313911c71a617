"""The Typer app: train, select, and one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mixsd_train.cli import app, main

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
    args += ["--data", str(records_file), "--out", str(out), "-c", str(config)]
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
    result = runner.invoke(app, ["select", str(out), "--set", "rule=last"])
    assert "checkpoint-2 (rule last" in result.output
    # a training folder as --model means the checkpoint its selection.json names
    second = tmp_path / "runs" / "second"
    again = [*args[:4], str(out), *args[5:]]
    again[again.index("--out") + 1] = str(second)
    result = runner.invoke(app, [*again, "--set", "max_steps=1"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((second / "manifest.json").read_text())
    assert manifest["model"]["spec"] == str(out)
    assert Path(manifest["model"]["name_or_path"]) == out / "checkpoint-2"
    # the same command again refuses to overwrite; --resume finds the run complete
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "--resume" in str(result.exception)
    result = runner.invoke(app, [*args, "--resume"])
    assert result.exit_code == 0, result.output


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> str:
    """``python -m mixsd_train ARGS``: its exit code must be 1; returns what it printed."""
    monkeypatch.setattr(sys, "argv", ["mixsd_train", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_errors_are_one_line(
    records_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    base = ["train", "--data", str(records_file), "--out", str(tmp_path / "r")]
    printed = run_main(monkeypatch, capsys, *base, "--method", "sfd")
    (line,) = printed.splitlines()
    assert line.startswith("error: unknown method 'sfd' (did you mean 'sft'?); choose one of:")
    printed = run_main(monkeypatch, capsys, *base, "--method", "opsd", "--set", "top_k=0")
    assert printed == "error: field 'top_k': must be >= 1, got 0\n"
    config = tmp_path / "c.yaml"
    config.write_text("seed: 1\ntopk: 3\n")
    printed = run_main(monkeypatch, capsys, *base, "--method", "sft", "--config", str(config))
    assert printed == f"error: {config}:2: field 'topk': unknown key\n"
    printed = run_main(monkeypatch, capsys, "select", str(tmp_path))
    assert printed == f"error: {tmp_path}: no trainer_state.json (not a training run?)\n"
    printed = run_main(monkeypatch, capsys, "select", str(tmp_path), "--rule", "firstpeak")
    # the rule is checked when the config loads (SelectConfig's choices), with a suggestion
    assert printed.startswith("error: field 'rule': must be one of [")
    assert printed.endswith("got 'firstpeak' (did you mean 'first-peak'?)\n")
