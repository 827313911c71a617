from __future__ import annotations

import subprocess
import sys

import typer
from typer.testing import CliRunner

from kgworld.cli import app as kgworld_app
from mixsd.cli import SUBCOMMANDS, app

runner = CliRunner()


def test_world_is_the_kgworld_app():
    mounted = {group.name: group.typer_instance for group in app.registered_groups}
    assert mounted["world"] is kgworld_app


def test_help_lists_exactly_the_mounted_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name, _, _ in SUBCOMMANDS:
        assert name in result.output
    listed = {c.name for c in typer.main.get_command(app).commands.values()}
    assert listed == {name for name, _, _ in SUBCOMMANDS} | {"version"}


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


def test_user_errors_print_one_line():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from mixsd.cli import main; main()",
            "world",
            "stats",
            "/nonexistent",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "manifest.json: not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_does_not_import_torch():
    code = "import sys, mixsd.cli; print('torch' in sys.modules, 'transformers' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False False"


def test_registry_names_resolve_to_converted_folders(monkeypatch, tmp_path):
    import mixsd_core
    from mixsd import _mounts

    monkeypatch.setattr(mixsd_core, "convert_model", lambda name: tmp_path / name)
    assert _mounts.model_folder("default") == tmp_path / "default"
    assert _mounts.model_folder("/some/folder") == "/some/folder"


def test_a_training_folder_resolves_to_its_selected_checkpoint(tmp_path):
    """``model: runs/X/train/sft`` starts a later stage from the checkpoint X selected, also
    after the run folder was moved (selection.json holds absolute paths)."""
    import json

    import pytest

    from mixsd import _mounts

    run = tmp_path / "train" / "sft"
    (run / "checkpoint-20").mkdir(parents=True)
    (run / "checkpoint-20" / "config.json").write_text("{}")
    selection = run / "selection.json"
    selection.write_text(json.dumps({"checkpoint": str(run / "checkpoint-20")}))
    assert _mounts.model_folder(str(run)) == run / "checkpoint-20"
    selection.write_text(json.dumps({"checkpoint": "/moved/away/train/sft/checkpoint-20"}))
    assert _mounts.model_folder(str(run)) == run / "checkpoint-20"
    selection.write_text(json.dumps({"checkpoint": str(run / "checkpoint-40")}))
    with pytest.raises(ValueError, match="checkpoint-40 is not a model folder"):
        _mounts.model_folder(str(run))
    selection.write_text(json.dumps({"step": 3}))
    with pytest.raises(ValueError, match=r"selection\.json: no 'checkpoint' field"):
        _mounts.model_folder(str(run))
