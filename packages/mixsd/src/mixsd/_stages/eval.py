"""Stage ``eval``: forgetbench on the base model and on each trained method's selected
checkpoint (retention is each held-out score over the base model's)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from mixsd._context import RunContext, TrainingData
from mixsd._methods import method_label
from mixsd._sections import stage_config
from mixsd._units import model_digest
from mixsd_base import UserError

__all__ = ["run"]

BASE = method_label("base")


def run(ctx: RunContext, data: TrainingData, runs: dict[str, dict[str, Any]]) -> dict[str, Path]:
    """``{label: eval/LABEL.json}``, the base model first."""
    from forgetbench import EvalConfig, evaluate

    models = {BASE: (ctx.base_model, ctx.base_digest)}
    for label, selection in runs.items():
        checkpoint = str(Path(selection["checkpoint"]))
        models[label] = (checkpoint, model_digest(checkpoint))
    results = {}
    for label, (model, weights) in models.items():
        out = ctx.paths.eval(label)
        owned = {
            "model": model,
            "out": str(out),
            "world": str(data.folder),
            "base_model": ctx.base_model,
            "cache_dir": str(ctx.paths.cache),
            "seed": ctx.config.seed,
        }
        if label != BASE and "heldout" in ctx.config.eval.suites:
            owned["base"] = str(ctx.paths.eval(BASE))  # retention: held-out score over base's
        try:
            config = stage_config(EvalConfig, ctx.config.eval, **owned)
        except (UserError, ValueError) as exc:
            raise ctx.config.section_error(("eval",), exc) from None
        inputs = {**asdict(config), "model": weights, "world": data.digest, "out": out.name}
        inputs.pop("base")
        inputs.pop("cache_dir")

        def build(c: EvalConfig = config) -> None:
            evaluate(c)

        ctx.units.run("eval", label, inputs, [out], build)
        results[label] = out
    return results
