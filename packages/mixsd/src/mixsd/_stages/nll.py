"""Stage ``nll``: the base model's NLL of every method's targets (the canonical records, and the
rollout file of each alpha): the share of high-NLL tokens the report compares.

Each rollout file is scored with ``compare`` = the canonical records, so its nll/NAME.json also
holds the paired figures (the paper's Tables 7-8 and Appendix E.2 on the same examples: the ids
the rollout kept, data = MixSD, compare = SFT)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from mixsd._context import Artifact, RunContext, TrainingData
from mixsd._methods import method_label
from mixsd._run_config import RunConfig
from mixsd._sections import stage_config
from mixsd_core import NLLConfig

__all__ = ["nll_config", "run", "targets"]


def nll_config(
    config: RunConfig, name: str, data: Path, model: str, compare: Path | None = None
) -> NLLConfig:
    return stage_config(
        NLLConfig,
        config.nll,
        model=model,
        data=str(data),
        out=str(config.paths.nll(name)),
        compare=None if compare is None else str(compare),
    )


def targets(
    data: TrainingData, rollouts: dict[str, Artifact], groups: dict[str, tuple[float, Any]]
) -> dict[str, dict[str, Any]]:
    """``{name: {kind, alpha, path, digest}}`` of every target file: the records SFT trains on
    (kind ``records``) and each rollout file (kind ``rollout``, with ``options`` where a method
    set its own; ``groups`` is :meth:`RunConfig.rollout_groups`). run.json carries it to the
    report, which reads kinds and alphas here instead of parsing names."""
    out: dict[str, dict[str, Any]] = {
        method_label("sft"): {
            "kind": "records",
            "alpha": None,
            "path": data.records,
            "digest": data.digest,
        }
    }
    for label, rollout in rollouts.items():
        alpha, options = groups[label]
        out[label] = {
            "kind": "rollout",
            "alpha": alpha,
            **({"options": options} if options else {}),
            "path": rollout.path,
            "digest": rollout.digest,
        }
    return out


def run(ctx: RunContext, files: dict[str, dict[str, Any]]) -> dict[str, Path]:
    """``{target name: nll/NAME.json}``."""
    from mixsd_core import run_nll

    records = next((t for t in files.values() if t["kind"] == "records"), None)
    results = {}
    for name, target in files.items():
        paired = records if target["kind"] == "rollout" else None
        config = nll_config(
            ctx.config,
            name,
            target["path"],
            ctx.base_model,
            compare=None if paired is None else paired["path"],
        )
        out = Path(config.out)
        inputs = {
            **asdict(config),
            "model": ctx.base_digest,
            "data": target["digest"],
            "compare": None if paired is None else paired["digest"],
            "out": out.name,
        }

        def build(c: NLLConfig = config) -> None:
            run_nll(c, progress=ctx.progress)

        ctx.units.run("nll", name, inputs, [out], build)
        results[name] = out
    return results
