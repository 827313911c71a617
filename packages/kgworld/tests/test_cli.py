from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgworld.cli import app, main

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

    return subprocess.run(
        [sys.executable, "-m", "kgworld", *args], capture_output=True, text=True, check=False
    )


def test_user_errors_are_one_line_and_write_nothing(tmp_path):
    out = tmp_path / "w"
    for args, message in [
        (
            ["gen", "--preset", "medium", "--out", str(out)],
            "field 'preset': unknown preset 'medium'",
        ),
        (["gen", "--set", "kgfact.domains=9", "--out", str(out)], "covers 7 domains"),
        (
            ["gen", "--set", "kgfact.bogus=1", "--out", str(out)],
            "field 'kgfact.bogus': unknown key",
        ),
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


def _tamper(world: Path, rel: str, edit) -> None:
    """Apply ``edit`` to a world file's text and re-hash it in the manifest."""
    path = world / rel
    path.write_text(edit(path.read_text()))
    if rel != "manifest.json":
        manifest = json.loads((world / "manifest.json").read_text())
        manifest["files"][rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        (world / "manifest.json").write_text(json.dumps(manifest))


def _bad_manifest_config(text: str) -> str:
    manifest = json.loads(text)
    manifest["config"]["kgfact"]["bogus"] = 1
    return json.dumps(manifest)


# (command line, files to prepare, what the one error line must say). "W" is a copy of a good
# world, "T" a scratch folder; every case names the file (and field) at fault.
BAD_INPUTS = {
    "gen-missing-config": (["gen", "-c", "T/none.yaml", "-o", "T/o"], {}, "none.yaml: config file not found"),
    "gen-bad-yaml": (["gen", "-c", "T/c.yaml", "-o", "T/o"], {"c.yaml": "seed: [1\n"}, "c.yaml:2: invalid YAML"),
    "gen-unknown-key": (["gen", "-c", "T/c.yaml", "-o", "T/o"], {"c.yaml": "kgfact:\n  domain: 3\n"}, "c.yaml:2: field 'kgfact.domain': unknown key (did you mean 'domains'?)"),
    "gen-bad-value": (["gen", "-c", "T/c.yaml", "-o", "T/o"], {"c.yaml": "edit:\n  count: 0\n"}, "c.yaml:2: field 'edit.count': must be >= 1, got 0"),
    "gen-bad-set": (["gen", "--set", "seed", "-o", "T/o"], {}, "--set 'seed': expected key=value"),
    "gen-set-type": (["gen", "--set", "seed=x", "-o", "T/o"], {}, "field 'seed': expected an integer, got 'x'"),
    "gen-out-is-file": (["gen", "-o", "T/f"], {"f": "x"}, "/f: exists and is not a directory"),
    "config-bad-preset": (["config", "--preset", "smal"], {}, "field 'preset': unknown preset 'smal' (did you mean 'small'?)"),
    "stats-not-a-world": (["stats", "T"], {}, "manifest.json: not found"),
    "stats-bad-manifest": (["stats", "W"], {"W/manifest.json": "{\n,"}, "manifest.json:2: invalid JSON"),
    "stats-bad-config": (["stats", "W"], {"W/manifest.json": _bad_manifest_config}, "manifest.json: field 'config.kgfact.bogus': unknown key"),
    "check-modified": (["check", "W"], {"W/kgfact/train.jsonl": None}, "train.jsonl: sha256 differs"),
    "check-bad-line": (["check", "W"], {"W/kgfact/twohop.jsonl": lambda t: t.replace("\n", "\n[1]\n", 1)}, "twohop.jsonl:2: expected a JSON object"),
    "check-bad-graph": (["check", "W"], {"W/graph.json": lambda t: "{}"}, "graph.json: not a kgworld node-link graph"),
    "check-violation": (["check", "W"], {"W/kgfact/train.jsonl": lambda t: t.replace('"answer": "', '"answer": "Not ', 1)}, "/W: kgfact/train 'kgfact-train-000000': the target's last"),
    "mquake-missing": (["import-mquake", "T/m.json", "-o", "T/o"], {}, "m.json: MQuAKE file not found"),
    "mquake-bad-json": (["import-mquake", "T/m.json", "-o", "T/o"], {"m.json": "[\n{,"}, "m.json:2: invalid JSON"),
    "mquake-bad-case": (["import-mquake", "T/m.json", "-o", "T/o"], {"m.json": "[{}]"}, "m.json: case 0: field 'requested_rewrite': missing"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_every_command_reports_bad_input_in_one_line(
    case, tmp_path, small_world_dir, monkeypatch, capsys
):
    args, files, message = BAD_INPUTS[case]
    scratch, world = tmp_path / "T", tmp_path / "W"
    scratch.mkdir()
    shutil.copytree(small_world_dir, world)
    for rel, content in files.items():
        target = tmp_path / rel if rel.startswith("W/") else scratch / rel
        if content is None:  # a change the manifest does not know about
            target.write_text(target.read_text() + "\n")
        elif callable(content):
            _tamper(world, rel.removeprefix("W/"), content)
        else:
            target.write_text(content)
    args = [str(tmp_path / a) if a[:2] in ("T/", "W/") or a in ("T", "W") else a for a in args]
    monkeypatch.setattr(sys, "argv", ["kgworld", *args])
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    assert info.value.code == 1
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert not (scratch / "o").exists()


def test_library_imports_only_networkx_mixsd_base_and_the_standard_library():
    import subprocess

    # Measured against a bare interpreter, so site hooks (a .pth file) do not count.
    code = (
        "import sys; before = set(sys.modules);"
        "import kgworld; kgworld.generate(kgworld.resolve_config());"
        "new = {m.split('.')[0] for m in set(sys.modules) - before};"
        "print(sorted(new - set(sys.stdlib_module_names)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "['kgworld', 'mixsd_base', 'networkx']"
