from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from mixsd.cli import app

runner = CliRunner()


def test_every_listed_command_has_working_help():
    command = typer.main.get_command(app)
    for name in command.commands:
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)


def test_world_gen_through_the_umbrella(tmp_path):
    out = tmp_path / "w"
    result = runner.invoke(app, ["world", "gen", "-q", "--preset", "small", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "kgfact" / "train.jsonl").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["world", "stats", "/nonexistent"], "manifest.json"),  # another package's error
        (["run", "/nonexistent/run.yaml"], "/nonexistent/run.yaml: config file not found"),
        (["run", "x.yaml", "--set", "seed"], "expected key=value"),
        (["report", "/nonexistent"], "run.json: not found (did the run finish that stage?)"),
    ],
)
def test_user_errors_print_one_line(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from mixsd.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_version_lists_the_workspace_with_the_base():
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines()]
    assert {"mixsd", "mixsd-base", "kgworld", "mixsd-core"} <= set(names)


def test_help_does_not_import_torch():
    code = "import sys, mixsd.cli; print('torch' in sys.modules, 'transformers' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False False"
