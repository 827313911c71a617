from __future__ import annotations

import json

from typer.testing import CliRunner

from kgworld.cli import app

runner = CliRunner()


def test_gen_stats_check(tmp_path):
    out = tmp_path / "w"
    result = runner.invoke(app, ["gen", "--preset", "small", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "100 facts" in result.output
    result = runner.invoke(app, ["stats", str(out)])
    assert result.exit_code == 0 and "kgfact/train: 100" in result.output
    assert "Person: 10" in result.output
    result = runner.invoke(app, ["check", str(out)])
    assert result.exit_code == 0 and result.output.strip().endswith("ok")


def test_check_names_the_first_violation(tmp_path):
    out = tmp_path / "w"
    assert runner.invoke(app, ["gen", "-q", "--out", str(out)]).exit_code == 0
    path = out / "kgfunc" / "test.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[0])
    record["answer"], record["target"] = "-7", "\\boxed{-7}"
    lines[0] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    manifest = json.loads((out / "manifest.json").read_text())
    import hashlib

    manifest["files"]["kgfunc/test.jsonl"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(app, ["check", str(out)])
    assert result.exit_code != 0
    assert "kgfunc-test-000000" in str(result.exception)


def test_config_file_and_set_overrides(tmp_path):
    config = tmp_path / "world.yaml"
    config.write_text("preset: large\nkgfunc:\n  enabled: false\n")
    out = tmp_path / "w"
    result = runner.invoke(
        app, ["gen", "-q", "-c", str(config), "--set", "kgfact.twohop_limit=7", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["kgfact/twohop"] == 7 and "kgfunc/train" not in manifest["counts"]


def test_config_command_prints_every_knob_as_loadable_yaml(tmp_path):
    import yaml

    result = runner.invoke(app, ["config", "--preset", "large"])
    assert result.exit_code == 0
    data = yaml.safe_load(result.output)
    assert data["kgfact"]["entities_per_domain"] == 25 and data["kgfunc"]["train_size"] == 1600
    path = tmp_path / "full.yaml"
    path.write_text(result.output)
    out = tmp_path / "w"
    assert runner.invoke(app, ["gen", "-q", "-c", str(path), "--out", str(out)]).exit_code == 0


def _run(*args: str):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "kgworld", *args], capture_output=True, text=True, check=False
    )


def test_user_errors_are_one_line_and_write_nothing(tmp_path):
    out = tmp_path / "w"
    for args, message in [
        (["gen", "--preset", "medium", "--out", str(out)], "unknown preset 'medium'"),
        (["gen", "--set", "kgfact.domains=9", "--out", str(out)], "covers 7 domains"),
        (["gen", "--set", "kgfact.bogus=1", "--out", str(out)], "unknown key kgfact.bogus"),
    ]:
        result = _run(*args)
        assert result.returncode == 1, result
        assert result.stderr.strip().count("\n") == 0 and message in result.stderr
        assert "Traceback" not in result.stderr
    assert not out.exists()
    out.mkdir()
    (out / "x").write_text("1")
    result = _run("gen", "--out", str(out))
    assert result.returncode == 1 and "not empty" in result.stderr
    assert [p.name for p in out.iterdir()] == ["x"]


def test_library_imports_only_networkx_and_the_standard_library():
    import subprocess
    import sys

    code = (
        "import sys, kgworld; kgworld.generate(kgworld.resolve_config());"
        "heavy = {'typer', 'yaml', 'click', 'rich', 'torch', 'numpy'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
