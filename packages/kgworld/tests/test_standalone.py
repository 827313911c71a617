"""kgworld serves other benchmarks on its own: a fresh virtual environment with only
``mixsd-base`` and ``kgworld[cli]`` installed generates the large world, and holds nothing
heavier than networkx, PyYAML and Typer (with Typer's own dependencies)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = Path(__file__).resolve().parents[2]
# Installed on purpose; everything else must come in as a dependency of Typer.
OWN = {"kgworld", "mixsd-base", "networkx", "pyyaml", "typer"}
HEAVY = {"torch", "transformers", "numpy", "datasets", "scipy", "pandas", "mixsd-core"}
INSTALLER_TOOLS = {"pip", "setuptools", "wheel"}  # what `python -m venv` puts there itself

# Run inside the new environment: every installed distribution, and the names Typer pulls in
# (its requirements, recursively, leaving out optional extras).
INVENTORY = """
import json, re
from importlib.metadata import distribution, distributions

def name(text):
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", text).group(0)).lower()

installed = {name(d.metadata["Name"]) for d in distributions()}
typer_deps, todo = set(), ["typer"]
while todo:
    for requirement in distribution(todo.pop()).requires or []:
        dep = name(requirement)
        if "extra ==" not in requirement and dep in installed and dep not in typer_deps:
            typer_deps.add(dep)
            todo.append(dep)
print(json.dumps({"installed": sorted(installed), "typer_deps": sorted(typer_deps)}))
"""


def _run(*args: str | Path) -> str:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_fresh_environment_installs_only_light_packages_and_generates(tmp_path):
    env, out = tmp_path / "venv", tmp_path / "world"
    python = env / "bin" / "python"
    wanted = [PACKAGES / "mixsd-base", f"{PACKAGES / 'kgworld'}[cli]"]
    uv = shutil.which("uv")
    if uv:  # fast: uv's cache
        _run(uv, "venv", "--quiet", "--python", sys.executable, env)
        # --no-sources: install as pip would, from these folders, not as workspace members.
        _run(uv, "pip", "install", "--quiet", "--no-sources", "--python", python, *wanted)
    else:
        _run(sys.executable, "-m", "venv", env)
        _run(python, "-m", "pip", "install", "--quiet", *wanted)

    _run(env / "bin" / "kgworld", "gen", "--quiet", "--preset", "large", "--out", out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["kgfact/train"] == 525 and len(manifest["files"]) == 12
    _run(env / "bin" / "kgworld", "check", out)

    inventory = json.loads(_run(python, "-c", INVENTORY))
    installed = set(inventory["installed"]) - INSTALLER_TOOLS
    assert not installed & HEAVY
    assert installed - OWN <= set(inventory["typer_deps"]), installed - OWN
    assert installed >= OWN
