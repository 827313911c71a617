"""``mixsd run CONFIG``: world -> data -> rollouts (-> the target frontier) -> NLL -> training ->
evaluation -> Fisher -> report, into one run folder with a subfolder per stage. Each stage is a module of ``_stages``;
each step is a unit (see ``_units``): reused when its inputs are unchanged, resumed when
interrupted, redone when its inputs changed.

    RUN/world/           the kgworld folder (or the one named by world.path)
    RUN/data/            the training records and the in-domain splits about the same facts
    RUN/rollouts/        mixsd-aALPHA.jsonl (+ manifest) per alpha
    RUN/frontier/        with a frontier: section, mixsd frontier's table, plot and rollouts
    RUN/nll/             base-model NLL of each method's targets
    RUN/train/LABEL/     checkpoints, trainer state, selection.json
    RUN/eval/LABEL.json  forgetbench results of the base and of each selected checkpoint
    RUN/fisher/          the base Fisher, the reference set, the displacement report
    RUN/run.json         the index of all of the above, with each method's label, kind and alpha,
                         and each unit's time and peak memory
    RUN/report.md        and RUN/plots/*.png
"""

from __future__ import annotations

from typing import Any

from mixsd._context import RunContext
from mixsd._methods import rollout_key
from mixsd._run_config import RunConfig
from mixsd._stages import data, fisher, frontier, nll, report, rollout, train, world
from mixsd._stages import eval as evaluation
from mixsd._units import UnitRunner, model_digest
from mixsd_base import UserError, write_json

__all__ = ["run_pipeline"]


def _context(config: RunConfig, progress: bool) -> RunContext:
    paths = config.paths
    from mixsd_core import resolve_model_spec

    try:
        base_model = resolve_model_spec(config.model).source
    except UserError as exc:
        if exc.path is not None:
            raise  # it names its own file (a training folder's selection.json)
        raise config.error(("model",), exc.message) from None
    return RunContext(
        config=config,
        paths=paths,
        units=UnitRunner(paths.root),
        base_model=base_model,
        base_digest=model_digest(base_model),
        progress=progress,
    )


def run_pipeline(config: RunConfig, *, progress: bool = True) -> tuple[dict[str, Any], str]:
    """Run (or resume, or reuse) every stage; returns the run index and the summary table."""
    ctx = _context(config, progress)
    world_folder = world.run(ctx)
    records = data.run(ctx, world_folder)
    rollouts = rollout.run(ctx, records)
    frontier_table = frontier.run(ctx, records)
    targets = nll.targets(records, rollouts, config.rollout_groups())
    nll_files = nll.run(ctx, targets)
    runs = train.run(ctx, records, rollouts)
    evals = evaluation.run(ctx, records, runs)
    fisher_report = fisher.run(ctx, runs, evals)
    index = {
        "world": str(world_folder.path),
        "data": str(records.records),
        "split": config.data.split,  # the in-domain split R2's training accuracy is read from
        "rollouts": {rollout_key(label): str(r.path) for label, r in rollouts.items()},
        "nll": {k: str(v) for k, v in nll_files.items()},
        "runs": runs,
        "evals": {k: str(v) for k, v in evals.items()},
        "fisher": str(fisher_report) if fisher_report else None,
        "frontier": str(frontier_table) if frontier_table else None,
        "methods": [m.summary() for m in config.methods],
        "targets": {
            k: {key: t[key] for key in ("kind", "alpha", "options") if key in t}
            for k, t in targets.items()
        },
        "model": config.model,
        # what each unit cost when it was built: seconds and this process's peak memory (GB)
        "units": ctx.units.measured(),
    }
    write_json(ctx.paths.index, index)
    if config.report:
        report.run(ctx, index)
    return index, ctx.units.summary()
