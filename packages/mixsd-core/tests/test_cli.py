"""The `rollout` command: a run from a model folder, config files, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mixsd_core.cli import app

runner = CliRunner()


@pytest.fixture
def data(tmp_path: Path, make_records) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in make_records(4)))
    return path


def test_rollout_from_a_model_folder(tiny_model_dir, data, tmp_path) -> None:
    out = tmp_path / "r.jsonl"
    args = ["rollout", "--model", str(tiny_model_dir), "--data", str(data), "--out", str(out)]
    result = runner.invoke(
        app, [*args, "--alpha", "0.3", "--max-new-tokens", "8", "--no-verify", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "kept 4/4" in result.output
    assert [json.loads(line)["alpha"] for line in out.read_text().splitlines()] == [0.3] * 4
    manifest = json.loads((tmp_path / "r.manifest.json").read_text())
    assert manifest["fingerprint"]["config"]["model"] == str(tiny_model_dir)
    # The same command again: already complete, same bytes.
    before = out.read_bytes()
    result = runner.invoke(
        app, [*args, "--alpha", "0.3", "--max-new-tokens", "8", "--no-verify", "--quiet"]
    )
    assert result.exit_code == 0 and out.read_bytes() == before
    # A different alpha on the same output: refused with one line.
    result = runner.invoke(app, [*args, "--alpha", "0.6", "--max-new-tokens", "8", "--no-verify"])
    assert result.exit_code == 1
    assert "different run (alpha)" in result.output and "Traceback" not in result.output


def test_yaml_config_under_flags(tiny_model_dir, data, tmp_path) -> None:
    config = tmp_path / "rollout.yaml"
    out = tmp_path / "y.jsonl"
    config.write_text(
        f"model: {tiny_model_dir}\ndata: {data}\nout: {out}\nalpha: 0.9\nmax_new_tokens: 6\nno_verify: true\n"
    )
    result = runner.invoke(app, ["rollout", "--config", str(config), "--alpha", "0.1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert {json.loads(line)["alpha"] for line in out.read_text().splitlines()} == {0.1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alpha", "1.5"], "alpha must be in [0, 1]"),
        (["--data", "missing.jsonl"], "missing.jsonl: no such data file"),
        (["--model", "no-such-model"], "no-such-model"),
    ],
)
def test_user_errors_are_one_line(data, tmp_path, args, message) -> None:
    base = ["rollout", "--data", str(data), "--out", str(tmp_path / "e.jsonl"), "--no-verify"]
    result = runner.invoke(app, [*base, *args])
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["train.jsonl"]  # nothing written


def test_unknown_yaml_key(tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("alpah: 0.2\n")
    result = runner.invoke(app, ["rollout", "--config", str(config)])
    assert result.exit_code == 1 and "unknown key 'alpah'" in result.output
