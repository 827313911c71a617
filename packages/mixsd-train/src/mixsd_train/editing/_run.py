"""One editing run: check inputs, load the model, edit, write the model folder + manifest.

Output (``config.output_dir``), built in a hidden folder beside it and renamed into place at the
end, so an interrupted run never leaves a folder that looks complete::

    config.json, model.safetensors, tokenizer*, ...   the edited model (save_pretrained)
    manifest.json     method, resolved config, edit count, layers, per-layer update norms,
                      rewrite accuracy before / after, timings, input hashes, versions
"""

from __future__ import annotations

import importlib
import os
import platform
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mixsd_base import Registry, file_sha256, package_versions, write_json
from mixsd_train._errors import TrainError

__all__ = ["EDIT_METHODS", "EditMethod", "resolve_edit_method", "run_memit"]


@dataclass(frozen=True)
class EditMethod:
    config: str  # "module:attr" of the config dataclass
    run: str  # "module:attr" of run(config, *, model, tokenizer, progress) -> manifest


EDIT_METHODS: Registry[EditMethod] = Registry(
    "edit method",
    {
        "memit": EditMethod(
            "mixsd_train.editing._config:MEMITConfig", "mixsd_train.editing._run:run_memit"
        ),
    },
)


def _attr(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def resolve_edit_method(name: str) -> tuple[type, Any]:
    """``(config class, run function)`` of a registered editing method."""
    method = EDIT_METHODS.get_or_fail(name)
    return _attr(method.config), _attr(method.run)


def _check_output(out: Path, overwrite: bool) -> None:
    if not out.parts or str(out) in ("", "."):
        raise TrainError("no output folder: pass --out runs/NAME")
    if out.exists() and not overwrite:
        raise TrainError(f"{out.absolute()} already exists; pass --overwrite or pick another --out")


def run_memit(
    config: Any, *, model: Any = None, tokenizer: Any = None, progress: bool = True
) -> dict[str, Any]:
    """Apply every request of ``config.edits`` at once with MEMIT; returns the manifest.

    ``model``/``tokenizer`` skip loading ``config.model`` (the model is edited in place).
    """
    import torch

    from mixsd_train.editing._config import MEMITConfig, default_layers
    from mixsd_train.editing._memit import apply_memit, rewrite_accuracy
    from mixsd_train.editing._requests import read_edit_requests
    from mixsd_train.editing._stats import second_moments

    if not isinstance(config, MEMITConfig):
        raise TrainError(f"memit needs a MEMITConfig, got {type(config).__name__}")
    if not config.edits:
        raise TrainError("no edit requests: pass --edits FILE (or edits: in the config)")
    out = Path(config.output_dir).expanduser()
    _check_output(out, config.overwrite)
    start = time.perf_counter()
    requests = read_edit_requests(config.edits)  # a bad file fails before the model loads
    if model is None or tokenizer is None:
        from mixsd_core import load_model

        model, tokenizer = load_model(
            config.model,
            dtype=config.dtype,
            device=config.device,
            trust_remote_code=config.trust_remote_code,
        )
    if config.prompt_format == "chat":
        requests = [r.in_chat(tokenizer) for r in requests]
    depth = int(model.config.num_hidden_layers)
    # The config's layers (a list once checked), else the paper's or the scaled rule's.
    layers = config.layers if isinstance(config.layers, list) else default_layers(model.config)
    if max(layers) >= depth:
        raise TrainError(
            f"layers {layers} out of range: the model has {depth} layers (0-{depth - 1})"
        )
    load_s = time.perf_counter() - start

    cache_files: dict[int, str] = {}

    def moments(needed: Sequence[int]) -> dict[int, torch.Tensor]:
        result, files = second_moments(
            model,
            tokenizer,
            needed,
            corpus=config.mom2_corpus,
            samples=config.mom2_samples,
            seq_len=config.mom2_seq_len,
            batch_size=config.batch_size,
            cache=config.stats_dir,
            progress=progress,
        )
        cache_files.update(files)
        return result

    before = rewrite_accuracy(model, tokenizer, requests, config.batch_size)
    report = apply_memit(model, tokenizer, requests, config, layers, moments, progress=progress)
    after = rewrite_accuracy(model, tokenizer, requests, config.batch_size)

    clock = time.perf_counter()
    manifest: dict[str, Any] = {
        "stage": "edit",
        "method": "memit",
        "status": "complete",
        "config": asdict(config),
        "model": {"spec": config.model, "name_or_path": str(getattr(model, "name_or_path", ""))},
        "edits": {
            "path": str(Path(config.edits).absolute()),
            "sha256": file_sha256(config.edits),
            "count": len(requests),
        },
        "layers": report["layers"],
        "update_norms": {str(k): v for k, v in report["update_norms"].items()},
        "residual_norms": {str(k): v for k, v in report["residual_norms"].items()},
        "rewrite_accuracy": {
            "before": {"top1": _share(before, "top1"), "exact": _share(before, "exact")},
            "after": {"top1": _share(after, "top1"), "exact": _share(after, "exact")},
        },
        "per_edit": [
            {**t, "top1_before": b["top1"], "top1_after": a["top1"], "exact_after": a["exact"]}
            for t, b, a in zip(report["targets"], before, after, strict=True)
        ],
        "context_templates": report["context_templates"],
        "second_moment_files": {str(k): v for k, v in sorted(cache_files.items())},
        "versions": {
            "python": platform.python_version(),
            **package_versions("mixsd-base", "mixsd-train", "mixsd-core", "torch", "transformers"),
        },
    }
    _save(
        model,
        tokenizer,
        out,
        manifest,
        timings={"load_s": load_s, **report["timings"]},
        clock=clock,
    )
    return manifest


def _share(results: list[dict[str, Any]], key: str) -> float:
    return sum(bool(r[key]) for r in results) / len(results)


def _save(
    model: Any,
    tokenizer: Any,
    out: Path,
    manifest: dict[str, Any],
    *,
    timings: dict[str, float],
    clock: float,
) -> None:
    """save_pretrained into a hidden sibling folder, manifest last, then rename onto ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    build = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        model.save_pretrained(build, safe_serialization=True)
        tokenizer.save_pretrained(build)
        timings["save_s"] = time.perf_counter() - clock
        manifest["timings"] = {k: round(v, 3) for k, v in timings.items()}
        write_json(build / "manifest.json", manifest, default=str)
        if out.exists():  # --overwrite: move the old folder aside first, then drop it
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            out.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        build.rename(out)  # atomic on one filesystem
    finally:
        shutil.rmtree(build, ignore_errors=True)
