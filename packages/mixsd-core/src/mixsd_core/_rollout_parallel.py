"""Data-parallel rollouts: ``data_parallel_size`` engines, each in its own process on its own
GPUs, over shares of the work (vLLM's offline data parallelism for dense models: independent
replicas, each given part of the prompts; the same on the HF backend).

The share is by chunk (``rollout_plan``): engine ``r`` of ``N`` decodes chunks ``r, r + N,
...`` A chunk's batches, masks and retries depend only on the chunk, so the merged output is
byte-identical to one engine's. Each engine appends to its own partial file
(``OUT.partial.rankR``); this process then merges them in input order and writes the output
and manifest as a single-engine run does. An interrupted run resumes: the chunks every engine
finished are folded into the main partial file first, so a rerun may even use another N.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mixsd_core._rollout_config import RolloutConfig, RolloutError
from mixsd_core._rollout_io import read_rank_partials, start_partial, write_output

__all__ = ["engine_devices", "run_data_parallel"]


def engine_devices(world: int, tensor_parallel: int) -> list[str] | None:
    """``CUDA_VISIBLE_DEVICES`` of each engine (``tensor_parallel`` GPUs each, in the order
    this process sees them), or None without GPUs (every engine on the CPU)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [d.strip() for d in visible.split(",") if d.strip()]
    else:
        import torch

        ids = [str(i) for i in range(torch.cuda.device_count())]
    if not ids:
        return None
    need = world * tensor_parallel
    if len(ids) < need:
        raise RolloutError(
            f"data_parallel_size {world} x tensor_parallel_size {tensor_parallel} needs {need} "
            f"GPUs; {len(ids)} visible ({','.join(ids)})"
        )
    return [",".join(ids[r * tensor_parallel : (r + 1) * tensor_parallel]) for r in range(world)]


def run_data_parallel(config: RolloutConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run (or resume, or find complete) ``config`` on ``config.data_parallel_size`` engine
    processes; returns the manifest, as ``run_rollout`` does."""
    from mixsd_core._rollout_stage import rollout_plan, verifier_names

    records, run_fingerprint, chunks, done = rollout_plan(config)
    if done is None:
        return json.loads(config.manifest_path.read_text())
    # Fold every engine's finished chunks into the main partial file, then start the engines
    # afresh on what is left (the main file is written before the engines' files go).
    finished, files, name = read_rank_partials(config, run_fingerprint, chunks)
    done.update(finished)
    start_partial(config, run_fingerprint, done)
    for path in files:
        path.unlink()
    if any(c[0] not in done for c in chunks):
        _run_engines(config, progress)
        finished, files, ran = read_rank_partials(config, run_fingerprint, chunks)
        done.update(finished)
        name = ran or name
    missing = [c[0] for c in chunks if c[0] not in done]
    if missing:  # an engine exited 0 without its share: never write an incomplete output
        raise RolloutError(f"data-parallel engines left chunks starting at {missing} undone")
    manifest = write_output(config, run_fingerprint, name, verifier_names(config, records), done)
    for path in files:
        path.unlink()
    return manifest


def _run_engines(config: RolloutConfig, progress: bool) -> None:
    """Start the engines and wait for all; an engine that fails stops the run."""
    world = config.data_parallel_size
    devices = engine_devices(world, config.tensor_parallel_size)
    with tempfile.TemporaryDirectory(prefix="mixsd-dp-") as tmp:
        config_file = Path(tmp) / "rollout.json"
        config_file.write_text(json.dumps(asdict(config)), encoding="utf-8")
        engines = []
        try:
            for rank in range(world):
                env = dict(os.environ)
                if devices is not None:
                    env["CUDA_VISIBLE_DEVICES"] = devices[rank]
                command = [sys.executable, "-m", "mixsd_core._rollout_worker", str(config_file)]
                command += [str(rank), str(world), "1" if progress else "0"]
                engines.append(subprocess.Popen(command, env=env))
            codes = [engine.wait() for engine in engines]
        finally:
            for engine in engines:  # an interrupt here must not leave engines decoding
                if engine.poll() is None:
                    engine.kill()
                    engine.wait()
    failed = [(rank, code) for rank, code in enumerate(codes) if code != 0]
    if failed:
        rank, code = failed[0]
        raise RolloutError(
            f"data-parallel engine {rank} of {world} exited with code {code} (its message is "
            "above); the chunks the engines finished are kept: rerun to resume"
        )
