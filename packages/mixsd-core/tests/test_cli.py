"""The ``mixsd-core`` console script: rollout from a model folder, config files and ``--set``, and
one-line errors for every kind of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def data(tmp_path: Path, make_records, write_jsonl) -> Path:
    return write_jsonl(tmp_path / "train.jsonl", make_records(4))


def test_rollout_from_a_model_folder(cli, tiny_model_dir, data, tmp_path) -> None:
    out = tmp_path / "r.jsonl"
    args = ["rollout", "--model", str(tiny_model_dir), "--data", str(data), "--out", str(out)]
    code, stdout, _ = cli(
        *args, "--alpha", "0.3", "--max-new-tokens", "8", "--no-verify", "--quiet"
    )
    assert code == 0 and "kept 4/4" in stdout
    assert [json.loads(line)["alpha"] for line in out.read_text().splitlines()] == [0.3] * 4
    manifest = json.loads((tmp_path / "r.manifest.json").read_text())
    assert manifest["fingerprint"]["config"]["model"] == str(tiny_model_dir)
    # The same command again: already complete, same bytes.
    before = out.read_bytes()
    code, _, _ = cli(*args, "--alpha", "0.3", "--max-new-tokens", "8", "--no-verify", "--quiet")
    assert code == 0 and out.read_bytes() == before
    # A different alpha on the same output: refused with one line.
    code, _, err = cli(*args, "--alpha", "0.6", "--max-new-tokens", "8", "--no-verify")
    assert code == 1 and "different run (alpha)" in err and "Traceback" not in err


def test_yaml_config_under_set_under_flags(cli, tiny_model_dir, data, tmp_path) -> None:
    config = tmp_path / "rollout.yaml"
    out = tmp_path / "y.jsonl"
    config.write_text(
        f"model: {tiny_model_dir}\ndata: {data}\nout: {out}\nalpha: 0.9\nmax_new_tokens: 6\n"
        "no_verify: true\nseed: 4\n"
    )
    code, _, err = cli("rollout", "--config", str(config), "--set", "alpha=0.2", "--quiet")
    assert code == 0, err
    assert {json.loads(line)["alpha"] for line in out.read_text().splitlines()} == {0.2}
    code, _, err = cli(
        "rollout",
        "-c",
        str(config),
        "--set",
        "alpha=0.2",
        "--alpha",
        "0.1",
        "--overwrite",
        "--quiet",
    )
    assert code == 0, err
    assert {json.loads(line)["alpha"] for line in out.read_text().splitlines()} == {0.1}
    manifest = json.loads((tmp_path / "y.manifest.json").read_text())
    assert manifest["fingerprint"]["config"]["seed"] == 4  # the file's value, kept


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alpha", "1.5"], "field 'alpha': must be in [0, 1], got 1.5"),
        (["--data", "missing.jsonl"], "missing.jsonl: no such data file"),
        (["--model", "no-such-model"], "unknown model 'no-such-model'"),
        (["--dtype", "fp8"], "field 'dtype': must be one of ['auto', 'bf16'"),
        (["--set", "alpah=0.2"], "field 'alpah': unknown key (did you mean 'alpha'?)"),
    ],
)
def test_user_errors_are_one_line(cli, data, tmp_path, args, message) -> None:
    base = ["rollout", "--data", str(data), "--out", str(tmp_path / "e.jsonl"), "--no-verify"]
    code, stdout, err = cli(*base, *args)
    assert code == 1 and stdout == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["train.jsonl"]  # nothing written


def test_config_file_errors_name_file_and_line(cli, tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("data: x.jsonl\nout: o.jsonl\nalpah: 0.2\n")
    code, _, err = cli("rollout", "--config", str(config))
    assert code == 1
    assert err == f"error: {config}:3: field 'alpah': unknown key (did you mean 'alpha'?)\n"
    config.write_text("data: x.jsonl\nout: o.jsonl\nbatch_size: many\n")
    code, _, err = cli("rollout", "--config", str(config))
    assert err == f"error: {config}:3: field 'batch_size': expected an integer, got 'many'\n"


# The bad inputs every command must turn into one line naming the file (and line, and field).
BAD_FILES = {
    "missing": (None, "no such data file"),
    "non-utf8": (b'{"id": "a", "prompt": "q\xff", "target": "t", "answer": "t"}\n', "UTF-8"),
    "empty": (b"", "holds no records"),
    "truncated": (
        b'{"id": "a", "prompt": "q", "target": "t", "answer": "t"}\n{"id": "b", "pro\n',
        ":2: invalid JSON",
    ),
    "no-target": (
        b'{"id": "a", "prompt": "q", "answer": "t"}\n',
        ":1: field 'target': missing field",
    ),
}


@pytest.mark.parametrize("command", ["rollout", "nll"])
@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_input_files_are_one_line(cli, tiny_model_dir, tmp_path, command, kind) -> None:
    content, message = BAD_FILES[kind]
    path = tmp_path / f"{kind}.jsonl"
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / ("o.jsonl" if command == "rollout" else "o.json")
    code, stdout, err = cli(
        command, "--model", str(tiny_model_dir), "--data", str(path), "--out", str(out)
    )
    assert code == 1 and stdout == "" and "Traceback" not in err
    assert err.startswith(f"error: {path.absolute() if kind == 'missing' else path}")
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_console_script(tmp_path) -> None:
    """The installed ``mixsd-core`` script: one line on stderr, exit 1, before loading a model."""
    script = Path(sys.executable).parent / "mixsd-core"
    done = subprocess.run(
        [str(script), "nll", "--data", str(tmp_path / "no.jsonl"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "MIXSD_DEBUG"},
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == f"error: {tmp_path / 'no.jsonl'}: no such data file\n"


def test_rollout_mixing_flags(cli, tiny_model_dir, data, tmp_path) -> None:
    out = tmp_path / "g.jsonl"
    args = ["rollout", "--model", str(tiny_model_dir), "--data", str(data), "--out", str(out)]
    code, stdout, err = cli(
        *args, "--mixing", "guard", "--delta", "1.5", "--max-new-tokens", "6", "--no-verify"
    )
    assert code == 0, err
    assert "naive share over disagreements" in stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["mixing"] for r in rows} == {"guard"} and all("sides" in r for r in rows)
    manifest = json.loads((tmp_path / "g.manifest.json").read_text())
    assert manifest["fingerprint"]["config"]["delta"] == 1.5
    code, _, err = cli(*args, "--mixing", "gate", "--tau", "0.2", "--repair", "2", "--no-verify")
    assert code == 1 and "field 'repair'" in err and "Traceback" not in err
