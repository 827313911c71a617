"""``kill -9`` in the middle of ``mixsd run``, then run it again: the run ends with the files an
uninterrupted run writes, byte for byte, nothing duplicated or lost (issue #20).

Each interrupted run is a subprocess that kills itself (SIGKILL: no cleanup, no flush) just
before one chosen file operation: ``sys.addaudithook`` sees every ``open`` for writing, rename,
removal and new folder of the Python process, so the kill points are file events, the same on
every machine, not wall-clock times. The points (``KILLS``) fall in every stage that writes
over time: rollouts, training (inside a checkpoint's save, and after the training before its
unit is marked done), evaluation, Fisher and the report.

What differs between two runs by design is left out of the comparison (``_contents``):
wall-clock fields in JSON files (``seconds``, ``created``, the trainer's runtime and
throughput, run.json's ``units``: each unit's status, time and peak memory), the Trainer's
end-of-training ``train_loss`` (see ``UNCOMPARED_KEYS``), the trainer's TensorBoard logs and
pickled arguments (named by wall time), and the digests in the unit markers (they hash files
that hold timings: the markers' status is compared).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

# The child: arm the kill, then run `mixsd run` as the console script does.
# KILL="EVENT RELPATH N": die before the N-th EVENT on RUN/RELPATH (EVENT: open = opened for
# writing, rename = renamed onto it, remove, mkdir, rmtree).
CHILD = r"""
import os, signal, sys

root = os.environ["RUN_ROOT"].rstrip("/") + "/"
kill = os.environ["KILL"].split()
seen = 0

def writing(mode, flags):
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)) if isinstance(flags, int) else False

def hook(event, args):
    global seen
    if event == "open" and writing(args[1], args[2]):
        kind, path = "open", args[0]
    elif event == "os.rename":
        kind, path = "rename", args[1]
    elif event in ("os.remove", "os.mkdir", "shutil.rmtree"):
        kind, path = event.rpartition(".")[2], args[0]
    else:
        return
    path = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else ""
    path = os.path.abspath(path)
    if not path.startswith(root):
        return
    rel = path[len(root):]
    if kind == kill[0] and rel == kill[1]:
        seen += 1
        if seen == int(kill[2]):
            os.kill(os.getpid(), signal.SIGKILL)

sys.addaudithook(hook)
import kgworld
from mixsd.cli import main

# A random tiny model never states the answer: a verifier that passes every reply.
kgworld.VERIFIERS.register("any", lambda reply, answer: True)
sys.argv = ["mixsd", "run", "--quiet", sys.argv[1]]
main()
"""


def _config(tmp: Path, model: Path) -> Path:
    prompts = tmp / "ref_prompts.jsonl"
    prompts.write_text("".join(f'{{"prompt": "Say {w}."}}\n' for w in ("hi", "yes")))
    config = {
        "out": str(tmp / "run"),
        "model": str(model),
        "world": {"preset": "small", "kgfunc": {"enabled": False}},
        "data": {"split": "kgfact/train", "limit": 4, "indomain": ["paraphrase"]},
        "methods": ["base", "sft", "mixsd@0.5"],
        # Two chunks of two: a kill can fall between them.
        "rollout": {
            "batch_size": 2,
            "chunk_batches": 1,
            "max_new_tokens": 6,
            "max_retries": 0,
            "verifier": "any",
        },
        "train": {
            "max_steps": 2,
            "save_steps": 1,
            "per_device_train_batch_size": 2,
            "global_batch_size": 2,
            "warmup_steps": 0,
            "learning_rate": 1e-3,
            "eval_max_new_tokens": 6,
        },
        "eval": {
            "suites": ["indomain", "refloss"],
            "limit": 2,
            "ref_prompts_file": str(prompts),
            "indomain_max_new_tokens": 6,
            "ref_max_new_tokens": 6,
            "batch_size": 4,
        },
        "fisher": {"max_length": 128, "samples": 2},
        "nll": {"batch_size": 4},
    }
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _run(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(config)],
        env={**os.environ, "RUN_ROOT": str(config.parent / "run"), **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


# Wall-clock fields: they differ between any two runs. And the Trainer's end-of-training
# train_loss: transformers averages it over the steps of the last session only, so a training
# resumed from a checkpoint records the mean of the steps it ran (the weights, the optimizer
# state and every score are equal).
UNCOMPARED_KEYS = {"seconds", "created", "train_runtime", "total_flos", "train_loss", "units"}


def _without_timing(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_timing(v)
            for k, v in value.items()
            if k not in UNCOMPARED_KEYS and not k.endswith("_per_second")
        }
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _tensors(path: Path) -> tuple[Any, dict[str, bytes]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = {k: _json_or_text(v) for k, v in (handle.metadata() or {}).items()}
        tensors = {k: handle.get_tensor(k).numpy().tobytes() for k in handle.keys()}  # noqa: SIM118
    return _without_timing(meta), tensors


def _compared(rel: str) -> bool:
    """Left out: the trainer's TensorBoard logs (``train/*/runs/``: files named by wall time and
    process id, one more per session that trained) and its pickled arguments
    (``training_args.bin``: they hold that log folder's time-stamped name)."""
    return "/runs/" not in f"/{rel}/" and not rel.endswith("training_args.bin")


def _contents(root: Path) -> dict[str, Any]:
    """Every file under ``root``: its bytes, or for JSON its value without timing fields."""
    out: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if not _compared(rel):
            continue
        if path.is_dir():
            out[rel] = "folder"
        elif rel.startswith(".units/"):  # unit markers: their digests hash files with timings
            out[rel] = json.loads(path.read_text())["status"]
        elif path.suffix == ".json":
            out[rel] = _without_timing(json.loads(path.read_text()))
        elif path.suffix == ".safetensors":  # the Fisher's manifest rides in its metadata
            out[rel] = _tensors(path)
        else:
            out[rel] = path.read_bytes()
    return out


# Kill points, in the order the run reaches them: the rollout output written but not renamed
# into place; SFT's second checkpoint begun (its folder made, nothing in it); SFT trained and
# selected, its unit not yet marked done; an evaluation written but not renamed; the Fisher
# report likewise; the report's second plot begun.
KILLS = (
    "rename rollouts/mixsd-a0.5.jsonl 1",
    "open train/sft/checkpoint-2/config.json 1",
    "rename .units/train--sft.json 2",
    "rename eval/sft.json 1",
    "rename fisher/compare.json 1",
    "open plots/nll_cdf.png 1",
)


def _run_here(config: Path) -> None:
    """``mixsd run CONFIG`` in this process (the two runs that are not killed: no start-up)."""
    from typer.testing import CliRunner

    import kgworld
    from mixsd.cli import app

    with kgworld.VERIFIERS.temporary("any", lambda reply, answer: True):
        result = CliRunner().invoke(app, ["run", "--quiet", str(config)])
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_killed_runs_resume_to_the_same_files(tmp_path: Path, tiny_model_dir: Path) -> None:
    config = _config(tmp_path, tiny_model_dir)
    run = tmp_path / "run"
    _run_here(config)
    reference = _contents(run)
    shutil.rmtree(run)

    for kill in KILLS:
        killed = _run(config, {"KILL": kill})
        # Killed: the run reached the point (a run that finished would exit 0).
        assert killed.returncode == -signal.SIGKILL, (kill, killed.stdout, killed.stderr)
    _run_here(config)

    resumed = _contents(run)
    assert sorted(resumed) == sorted(reference)  # nothing lost, nothing extra (no temporaries)
    different = [rel for rel in reference if resumed[rel] != reference[rel]]
    assert not different, different


def test_a_crash_while_the_rollout_partial_file_is_rewritten_keeps_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resumed rollout rewrites its partial file (header + the whole chunks); a kill inside
    that rewrite must leave the previous file, not a truncated one the next resume refuses."""
    from mixsd_core import _rollout_io
    from mixsd_core._rollout_config import RolloutConfig

    config = RolloutConfig(data=str(tmp_path / "d.jsonl"), out=str(tmp_path / "r.jsonl"))
    fingerprint = {"config": {"seed": 0}, "data_sha256": "0" * 64}
    _rollout_io.start_partial(config, fingerprint, {0: {"index": 0, "kept": False, "attempts": 1}})
    before = config.partial_path.read_bytes()

    def cut_short(f: Any, entries: list[dict[str, Any]]) -> None:
        f.write('{"fingerprint": ')
        raise KeyboardInterrupt  # the process dies here

    monkeypatch.setattr(_rollout_io, "append_entries", cut_short)
    with pytest.raises(KeyboardInterrupt):
        _rollout_io.start_partial(config, fingerprint, {})
    assert config.partial_path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl.partial"]
