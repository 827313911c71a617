"""Stage ``rollout``: one file of verified mixed targets per alpha (and per method's rollout
options) some method trains at (``rollouts/mixsd-aALPHA.jsonl``,
``rollouts/mixsd-aALPHA-gate-tau0.2.jsonl``), shared by MixSD and MixSD-KL at that alpha. With
``rollout.filter`` (``intersection`` or ``fill``) the methods train on the filtered files instead
(``mixsd._qa.filter_rollouts``: every row, the ground-truth one where a rollout failed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mixsd._context import Artifact, RunContext, TrainingData
from mixsd._methods import rollout_label
from mixsd._run_config import RunConfig
from mixsd._sections import stage_config
from mixsd_base import read_json
from mixsd_core import RolloutConfig

__all__ = ["rollout_config", "run"]


def rollout_config(
    config: RunConfig, alpha: float, model: str, options: dict[str, Any] | None = None
) -> RolloutConfig:
    """The RolloutConfig of the run's rollouts at ``alpha`` from the base ``model``, with a
    method's own rollout ``options`` over the rollout section."""
    options = options or {}
    return stage_config(
        RolloutConfig,
        config.rollout,
        **options,
        model=model,
        data=str(config.paths.records(config.data.split)),
        out=str(config.paths.rollout(rollout_label(alpha, options))),
        alpha=alpha,
        seed=config.seed,
    )


def run(ctx: RunContext, data: TrainingData) -> dict[str, Artifact]:
    """``{rollout label: file}`` of the rollouts that kept at least one target."""
    from mixsd_core import run_rollout

    done, made = {}, {}
    for label, (alpha, options) in ctx.config.rollout_groups().items():
        config = rollout_config(ctx.config, alpha, ctx.base_model, options)
        out = Path(config.out)
        # The config's settings (what decides the targets), not every field: an engine option
        # such as tensor_parallel_size must not redo finished rollouts.
        inputs = {**config.settings(), "model": ctx.base_digest, "data": data.digest}
        inputs["out"] = out.name

        def build(c: RolloutConfig = config) -> None:
            run_rollout(c, progress=ctx.progress)

        digest = ctx.units.run("rollouts", out.stem, inputs, [out], build)
        made[label] = Artifact(out, digest)
        if ctx.config.rollout.filter != "none":
            continue  # a file that kept nothing still takes part: every row falls back
        if read_json(config.manifest_path)["counts"]["kept"] == 0:
            ctx.units.echo(
                f"[rollouts] {out.stem}: no target passed the verifier; methods trained on "
                "it are skipped (see its manifest for the drop count)"
            )
            continue
        done[label] = Artifact(out, digest)
    if ctx.config.rollout.filter != "none" and made:
        from mixsd._qa import filter_rollouts

        return filter_rollouts(ctx, data, made, ctx.config.rollout.filter)
    return done
