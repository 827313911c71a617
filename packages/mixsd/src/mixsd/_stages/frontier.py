"""Stage ``frontier`` (only with a ``frontier:`` section): ``mixsd frontier`` on the run's
training records from its base model, with the run's seed and rollout section, into
``RUN/frontier/`` (frontier.json/.md/.png and a rollout file per setting). No method trains on
these files; the report shows the table and the plot."""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path

from mixsd._context import RunContext, TrainingData
from mixsd._frontier import FrontierConfig
from mixsd._run_config import RunConfig
from mixsd._sections import stage_config

__all__ = ["frontier_config", "run"]


def frontier_config(config: RunConfig, model: str) -> FrontierConfig:
    """The FrontierConfig of the run's ``frontier:`` section (which must be set)."""
    assert config.frontier is not None
    return stage_config(
        FrontierConfig,
        config.frontier,
        model=model,
        data=str(config.paths.records(config.data.split)),
        out=str(config.paths.frontier),
        seed=config.seed,
        rollout=copy.deepcopy(config.rollout),
    )


def run(ctx: RunContext, data: TrainingData) -> Path | None:
    """``RUN/frontier/frontier.json``, or None without a ``frontier:`` section."""
    if ctx.config.frontier is None:
        return None
    from mixsd._frontier import run_frontier

    config = frontier_config(ctx.config, ctx.base_model)
    out = Path(config.out)
    # Locations out of the digest: a moved run folder keeps its frontier (its rollout files
    # are reused by their own fingerprints when a setting is added).
    inputs = {
        **asdict(config),
        "model": ctx.base_digest,
        "data": data.digest,
        "out": out.name,
    }
    table = out / "frontier.json"
    ctx.units.run(
        "frontier",
        "frontier",
        inputs,
        [table, out / "frontier.md"],
        lambda: run_frontier(config, progress=ctx.progress),
    )
    return table
