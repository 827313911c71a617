"""Skip, resume and redo for the steps of ``mixsd run``.

A run is a list of *units* (the world, one rollout file, one training run, one evaluation, ...),
each writing into the run folder. Before a unit runs, a marker ``.units/STAGE--NAME.json`` records
the sha256 of its inputs (its config and the digests of the units it reads). Then:

* marker complete, same digest, outputs present -> reused, nothing runs;
* marker running, same digest (an interrupted run) -> the unit runs again and its own tool resumes
  from what it left (rollout partial files, trainer checkpoints);
* different digest (the config or an upstream output changed) -> its outputs are removed and it
  runs from scratch.

Each unit that runs records its time and this process's peak resident memory while it ran (Linux:
the high-water mark is reset before the unit; child processes are not counted). Before each unit
the memory earlier units freed is handed back to the system (``release_memory``): all stages run
in one process, and glibc keeps freed heap pages resident, so a unit's peak would otherwise sit on
top of what training left behind.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixsd_base import file_sha256, read_json, write_text

__all__ = ["UnitLog", "UnitRunner", "digest_of", "model_digest", "release_memory"]


def _canonical(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def digest_of(value: Any) -> str:
    """sha256 of a JSON-able value, independent of dict order and of PYTHONHASHSEED."""
    text = json.dumps(_canonical(value), sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class UnitLog:
    stage: str
    name: str
    status: str  # "ran", "resumed", "redone" or "reused"
    seconds: float
    peak_gb: float | None = None  # this process's peak resident memory during the unit
    # the complete marker that describes the unit: written now, or read (reused)
    marker: dict[str, Any] = field(default_factory=dict)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, looked up once (``find_library`` runs ldconfig); None elsewhere."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl)
        return None


def release_memory() -> None:
    """Collect garbage, then return the C heap's free pages to the system (glibc ``malloc_trim``;
    nothing elsewhere). Freed tensors' memory otherwise stays resident for the process's life."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _reset_peak_memory() -> bool:
    """Reset this process's resident high-water mark (Linux >= 4.0); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _resident_gb(field: str) -> float | None:
    """A memory field of /proc/self/status in GB (VmHWM: the high-water mark, VmRSS: now)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) * 1024 / 1e9 if match else None


@dataclass
class UnitRunner:
    """Runs units in a run folder and remembers what happened to each."""

    root: Path
    echo: Callable[[str], None] = print
    log: list[UnitLog] = field(default_factory=list)

    def _marker(self, stage: str, name: str) -> Path:
        return self.root / ".units" / f"{stage}--{name}.json"

    def run(
        self,
        stage: str,
        name: str,
        inputs: dict[str, Any],
        outputs: Sequence[Path],
        build: Callable[[], Any],
    ) -> str:
        """Run ``build`` unless its outputs are current; returns the unit's digest."""
        digest = digest_of({"stage": stage, "name": name, "inputs": inputs})
        marker = self._marker(stage, name)
        previous = read_json(marker) if marker.is_file() else None
        if (
            previous is not None
            and previous.get("digest") == digest
            and previous.get("status") == "complete"
            and all(p.exists() for p in outputs)
        ):
            self.log.append(UnitLog(stage, name, "reused", 0.0, marker=previous))
            return digest
        status = "ran"
        if previous is not None and previous.get("digest") != digest:
            status = "redone"
            self.echo(f"[{stage}] {name}: inputs changed, redoing it")
            for path in outputs:
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
        elif previous is not None:
            status = "resumed"
            self.echo(f"[{stage}] {name}: resuming an interrupted run")
        else:
            self.echo(f"[{stage}] {name}")
        self._write(marker, {"digest": digest, "status": "running", "inputs": inputs})
        release_memory()
        started = time.monotonic()
        peak_was_reset = _reset_peak_memory()
        # What the process holds before the unit (earlier units' leftovers are part of its peak)
        before_gb = _resident_gb("VmRSS")
        build()
        seconds = time.monotonic() - started
        # Without a reset the mark would include earlier units: better none than a wrong one.
        peak_gb = _resident_gb("VmHWM") if peak_was_reset else None
        missing = [str(p) for p in outputs if not p.exists()]
        if missing:
            raise RuntimeError(f"[{stage}] {name} finished without writing {missing}")
        complete = {
            "digest": digest,
            "status": "complete",
            "seconds": seconds,
            "peak_gb": peak_gb,
            "resident_before_gb": before_gb,
            "inputs": inputs,
        }
        self._write(marker, complete)
        self.log.append(UnitLog(stage, name, status, seconds, peak_gb, complete))
        return digest

    def _write(self, path: Path, value: dict[str, Any]) -> None:
        write_text(path, json.dumps(_canonical(value), indent=2, default=str) + "\n")

    def measured(self) -> list[dict[str, Any]]:
        """Each unit of this run with the time and memory of the run that built it (a reused
        unit's come from its marker, so a resumed pipeline still reports what each stage cost;
        a marker written before memory was recorded has none)."""
        return [
            {
                "stage": item.stage,
                "name": item.name,
                "status": item.status,
                "seconds": item.marker.get("seconds"),
                "peak_gb": item.marker.get("peak_gb"),
                "resident_before_gb": item.marker.get("resident_before_gb"),
            }
            for item in self.log
        ]

    def summary(self) -> str:
        """A table of what ran, what was reused, how long each unit took and its peak memory."""
        rows = [("stage", "unit", "status", "time", "peak memory")]
        stages: dict[str, float] = {}
        for item in self.log:
            peak = "" if item.peak_gb is None else f"{item.peak_gb:.1f} GB"
            rows.append((item.stage, item.name, item.status, _duration(item.seconds), peak))
            stages[item.stage] = stages.get(item.stage, 0.0) + item.seconds
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        totals = ", ".join(f"{s} {_duration(t)}" for s, t in stages.items())
        lines.append(f"per stage: {totals}; total {_duration(sum(stages.values()))}")
        return "\n".join(lines)


def model_digest(folder: str) -> Any:
    """What identifies a model folder's weights cheaply: file names and sizes, config hash."""
    path = Path(folder)
    if not path.is_dir():
        return folder  # a hub id: its name is all we know
    files = sorted(path.glob("*.safetensors"))
    return [(f.name, f.stat().st_size) for f in files] + [
        file_sha256(path / "config.json") if (path / "config.json").is_file() else None
    ]


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
