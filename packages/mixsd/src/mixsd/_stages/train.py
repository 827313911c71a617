"""Stage ``train``: each trained method on its data (the records, or the rollout file at its
alpha), with checkpoint selection; MEMIT edits once instead (one model, no checkpoints).

A method's trainer config is built from defaults < the ``train.config`` file < the shared
``train:`` options it has < its own ``train:`` options < the paths the pipeline sets.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from mixsd._context import Artifact, RunContext, TrainingData
from mixsd._methods import MethodSpec
from mixsd._run_config import RunConfig
from mixsd._sections import pipeline_fields
from mixsd_base import UserError, load_config, read_json, write_json

__all__ = ["check", "config_class", "run", "trainer_config"]

# TrainingArguments fields the run sets (they are transformers' own, so unmarked): the run's
# seed, one output folder per method, no nested progress bars when the run is quiet.
RUN_SETS = ("output_dir", "seed", "disable_tqdm", "overwrite")


def config_class(method: str) -> Any:
    """The config dataclass of a trained method (MEMIT is an edit, not a Trainer)."""
    if method == "memit":
        from mixsd_train import MEMITConfig

        return MEMITConfig
    from mixsd_train import resolve_method

    return resolve_method(method)[0]


def _known(cls: type) -> set[str]:
    return {f.name for f in fields(cls) if f.init}


def trainer_config(config: RunConfig, method: MethodSpec, owned: dict[str, Any]) -> Any:
    """The method's trainer config: the shared options it has < its own < ``owned``."""
    cls = config_class(method.method)
    shared = {k: v for k, v in config.train.options.items() if k in _known(cls)}
    values = {"seed": config.seed, **shared, **method.train, **owned}
    if method.method == "memit":  # no trainer file: MEMIT's options are its own
        return cls(**values)
    return load_config(cls, config.train.config, values)


def check(config: RunConfig) -> None:
    """Every trained method's config builds (at load time): unknown and pipeline keys are
    errors naming their line, bad values name the method."""
    classes = {m.method: config_class(m.method) for m in config.trained}
    everyone = set().union(*(_known(cls) for cls in classes.values()))
    for key in config.train.options:
        if key not in everyone:
            raise config.error(("train", key), "no method here has this option")
    for index, method in enumerate(config.methods):
        if method.method == "base":
            continue
        owned = pipeline_fields(classes[method.method]) | set(RUN_SETS)
        for keys, options in (
            (("train",), config.train.options),
            (("methods", str(index), "train"), method.train),
        ):
            for key in options:
                if key in owned:
                    raise config.error((*keys, key), "set by the pipeline itself")
        for key in method.train:
            if key not in _known(classes[method.method]):
                raise config.error(("methods", str(index), "train", key), "unknown option")
        try:
            trainer_config(config, method, {})
        except (UserError, ValueError, TypeError) as exc:  # TrainError, TrainingArguments' own
            # The option may come from this method's train: or from the run's train: section.
            own = ("methods", str(index), "train")
            field = exc.field if isinstance(exc, UserError) else None
            shared = field is not None and ("train", *field.split(".")) in config.source.origins
            raise config.section_error(("train",) if shared else own, exc) from None


def run(
    ctx: RunContext, data: TrainingData, rollouts: dict[float, Artifact]
) -> dict[str, dict[str, Any]]:
    """``{label: selection}`` of every method trained (its selection.json)."""
    from mixsd_train import select_checkpoint, train

    runs = {}
    for method in ctx.config.trained:
        out = ctx.paths.train(method.label)
        if method.alpha is not None and method.alpha not in rollouts:
            continue  # its rollouts kept nothing (said at the rollout stage)
        if method.method == "memit":
            runs[method.label] = _memit(ctx, method, out, data)
            continue
        source = rollouts[method.alpha] if method.alpha is not None else None
        owned = {
            "model": ctx.base_model,
            "data": str(source.path if source else data.records),
            "output_dir": str(out),
            "eval_data": str(data.records),  # training accuracy on every fact, kept or not
            "disable_tqdm": not ctx.progress,
        }
        train_config = trainer_config(ctx.config, method, owned)
        settings = {k: v for k, v in train_config.to_dict().items() if k not in owned}
        inputs = {
            "method": method.method,
            "settings": settings,
            "model": ctx.base_digest,
            "data": source.digest if source else data.digest,
            "eval_data": data.digest,
            "select": ctx.config.select,
        }

        def build(m: str = method.method, c: Any = train_config, o: Path = out) -> None:
            train(m, c, resume=True)  # resumes only an interrupted run of these inputs
            select_checkpoint(o, ctx.config.select)

        # The whole folder is the unit's output: changed inputs remove its checkpoints, so
        # the redone training starts afresh instead of resuming the old run's last one.
        ctx.units.run("train", method.label, inputs, [out / "selection.json", out], build)
        runs[method.label] = read_json(out / "selection.json")
    return runs


def _memit(ctx: RunContext, method: MethodSpec, out: Path, data: TrainingData) -> dict[str, Any]:
    """All edits of the training file at once with MEMIT: one model, no checkpoints."""
    from mixsd_train import run_memit

    owned = {
        "model": ctx.base_model,
        "edits": str(data.records),
        "output_dir": str(out / "model"),
        "overwrite": True,
    }
    memit_config = trainer_config(ctx.config, method, owned)
    settings = {k: v for k, v in asdict(memit_config).items() if k not in owned}
    inputs = {"method": "memit", "settings": settings, "model": ctx.base_digest}
    inputs["data"] = data.digest

    def build() -> None:
        manifest = run_memit(memit_config, progress=ctx.progress)
        selection = {
            "rule": "memit",
            "step": 0,
            "checkpoint": str(out / "model"),
            # top-1 of the new object on the rewrite prompts
            "val_accuracy": manifest["rewrite_accuracy"]["after"]["top1"],
            "curve": [],
        }
        write_json(out / "selection.json", selection)

    ctx.units.run("train", method.label, inputs, [out / "selection.json"], build)
    return read_json(out / "selection.json")
