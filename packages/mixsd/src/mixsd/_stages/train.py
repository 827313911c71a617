"""Stage ``train``: each trained method on its data (the records, or the rollout file at its
alpha), with checkpoint selection; MEMIT edits once instead (one model, no checkpoints).

A method's trainer config is built from defaults < the ``train.config`` file < the shared
``train:`` options it has < its own ``train:`` options < the paths the pipeline sets. The
teacher prompt of the on-policy methods is worded as the rollouts' expert prompt: the run's
``rollout.prompt_style`` is the trainer's ``prompt_style``.

Learning-rate sweep (``train.lr_grid``, the paper's tuning): each method is trained once per
rate, each run a unit of its own (``train/LABEL/lrRATE/``, reused and resumed like any unit),
each with its own checkpoint selection; then one more unit scores each rate's selected
checkpoint on the validation split (greedy accuracy, as the training validation) and keeps the
best rate (``mixsd_train.select_learning_rate``): ``train/LABEL/selection.json`` names it and
``train/LABEL/checkpoint-N`` link to its checkpoints, so evaluation, Fisher and the report read
the chosen run as they read an unswept one.

``select: paper`` (the paper's checkpoint rule, ``mixsd_train.paper``) reads a second curve:
every method's training then also validates each checkpoint on the validation split (the one
the sweep selects on) as ``validation_data``, and every method is selected by that rule.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from mixsd._context import Artifact, RunContext, TrainingData
from mixsd._methods import MethodSpec
from mixsd._run_config import RunConfig
from mixsd._sections import pipeline_fields
from mixsd_base import UserError, load_config, read_json, read_jsonl, write_json
from mixsd_train import RULES

__all__ = [
    "check",
    "config_class",
    "learning_rates",
    "run",
    "trainer_config",
    "validation_score",
    "validation_split",
]

# TrainingArguments fields the run sets (they are transformers' own, so unmarked): the run's
# seed, one output folder per method, no nested progress bars when the run is quiet.
RUN_SETS = ("output_dir", "seed", "disable_tqdm", "overwrite", "prompt_style")

# The split each task family's learning rate is selected on (the paper: "validation
# performance"; the authors' code validates KGFact on its paraphrased questions, KGFunc on its
# test questions; a QA file has only its held-out questions).
VALIDATION_SPLITS = {
    "kgfact": "kgfact/paraphrase",
    "kgfunc": "kgfunc/test",
    "edit": "edit/paraphrase",
    "qa": "qa/validation",
}


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
    values = _trainer_values(config, method, owned)
    if method.method == "memit":  # no trainer file: MEMIT's options are its own
        return cls(**values)
    return load_config(cls, config.train.config, values)


def _trainer_values(config: RunConfig, method: MethodSpec, owned: dict[str, Any]) -> dict[str, Any]:
    """The options the run gives the method's trainer over the ``train.config`` file."""
    cls = config_class(method.method)
    shared = {k: v for k, v in config.train.options.items() if k in _known(cls)}
    values = {"seed": config.seed, **shared, **method.train, **owned}
    if "prompt_style" in _known(cls):  # the teacher prompt in the rollouts' wording
        values["prompt_style"] = config.rollout.prompt_style
    return values


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
                if key == "prompt_style":
                    raise config.error((*keys, key), "set from rollout.prompt_style")
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
    _check_launcher(config)
    if config.select not in ("auto", *RULES):
        raise config.error(("select",), f"unknown rule; choose one of: auto, {', '.join(RULES)}")
    # Both read the validation split: the sweep scores each rate on it, the paper's checkpoint
    # rule validates every checkpoint on it.
    readers: list[tuple[tuple[str, ...], str]] = []
    if config.train.lr_grid is not None:
        readers.append((("train", "lr_grid"), "the sweep selects"))
    if _heldout(config):
        readers.append((("select",), "the paper's checkpoint rule validates"))
    for option, reader in readers:
        split = validation_split(config, option)
        family = split.partition("/")[0]
        if family == "kgfact" and "paraphrase" not in config.data.indomain:
            raise config.error(option, f"{reader} on {split}: add paraphrase to data.indomain")


def _check_launcher(config: RunConfig) -> None:
    """An accelerate config that shards the model (FSDP) cannot run the on-policy methods
    (each process samples its own prompts); said at load, not hours into the run."""
    import yaml

    path = config.train.accelerate_config
    if config.train.launcher != "accelerate" or path is None:
        return
    if not Path(path).is_file():
        raise config.error(("train", "accelerate_config"), f"{path} not found")
    settings = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    on_policy = [m.label for m in config.trained if m.method in ("opsd", "opsd-nll")]
    if isinstance(settings, dict) and settings.get("distributed_type") == "FSDP" and on_policy:
        raise config.error(
            ("train", "accelerate_config"),
            f"FSDP cannot train {', '.join(on_policy)} (each process samples its own prompts); "
            "use a DDP config (configs/accelerate/ddp.yaml) or leave them out",
        )


def _heldout(config: RunConfig) -> bool:
    """Whether the run's checkpoint rule reads the held-out validation curve."""
    return config.select != "auto" and RULES[config.select].needs_validation


def validation_split(config: RunConfig, keys: tuple[str, ...] = ("train", "lr_grid")) -> str:
    """The split a learning-rate sweep and the paper's checkpoint rule validate on (by the
    training split's family); ``keys`` name the option that needs it in the error."""
    family = config.data.split.partition("/")[0]
    if family not in VALIDATION_SPLITS:
        raise config.error(keys, f"no validation split for {config.data.split} to select on")
    return VALIDATION_SPLITS[family]


def learning_rates(config: RunConfig, method: MethodSpec) -> list[float] | None:
    """The rates a method is swept over; None when it trains once (no grid, or it sets its own
    ``learning_rate``, or it is MEMIT)."""
    grid = config.train.lr_grid
    if grid is None or method.method == "memit" or "learning_rate" in method.train:
        return None
    return sorted(float(lr) for lr in grid)


def run(
    ctx: RunContext, data: TrainingData, rollouts: dict[str, Artifact]
) -> dict[str, dict[str, Any]]:
    """``{label: selection}`` of every method trained (its selection.json)."""
    runs = {}
    for method in ctx.config.trained:
        out = ctx.paths.train(method.label)
        if method.rollout_name is not None and method.rollout_name not in rollouts:
            continue  # its rollouts kept nothing (said at the rollout stage)
        if method.method == "memit":
            runs[method.label] = _memit(ctx, method, out, data)
            continue
        source = rollouts[method.rollout_name] if method.rollout_name is not None else None
        grid = learning_rates(ctx.config, method)
        if grid is None:
            _train_one(ctx, method, method.label, out, source, data, {})
        else:
            _sweep(ctx, method, out, source, data, grid)
        runs[method.label] = read_json(out / "selection.json")
    return runs


def _train_one(
    ctx: RunContext,
    method: MethodSpec,
    unit: str,
    out: Path,
    source: Artifact | None,
    data: TrainingData,
    values: dict[str, Any],
) -> str:
    """Train one method (at the options ``values`` add) into ``out`` and select its
    checkpoint, as the unit ``unit``; returns the unit's digest."""
    from mixsd_train import select_checkpoint, train

    owned = {
        "model": ctx.base_model,
        "data": str(source.path if source else data.records),
        "output_dir": str(out),
        "eval_data": str(data.records),  # training accuracy on every fact, kept or not
        "disable_tqdm": not ctx.progress,
    }
    if _heldout(ctx.config):  # the rule's validation curve, on the sweep's validation split
        owned["validation_data"] = str(data.folder / f"{validation_split(ctx.config)}.jsonl")
    owned_all = {**values, **owned}
    train_config = trainer_config(ctx.config, method, owned_all)
    settings = {k: v for k, v in train_config.to_dict().items() if k not in owned}
    inputs = {
        "method": method.method,
        "settings": settings,
        "model": ctx.base_digest,
        "data": source.digest if source else data.digest,
        "eval_data": data.digest,
        "select": ctx.config.select,
    }

    def build() -> None:
        if _finished(out):  # trained to the end before a kill: only select again
            select_checkpoint(out, ctx.config.select)
            return
        if ctx.config.train.launcher == "none":
            train(method.method, train_config, resume=True)  # resumes an interrupted run only
        else:
            _launch(ctx.config, method, out, _trainer_values(ctx.config, method, owned_all))
        select_checkpoint(out, ctx.config.select)

    # The whole folder is the unit's output: changed inputs remove its checkpoints, so
    # the redone training starts afresh instead of resuming the old run's last one.
    return ctx.units.run("train", unit, inputs, [out / "selection.json", out], build)


def _launch(config: RunConfig, method: MethodSpec, out: Path, values: dict[str, Any]) -> None:
    """Train one unit in ``train.nproc`` processes (torchrun or accelerate launch) running
    ``mixsd_train train --resume`` on the config this process would train with: the trainer
    file, extended by the run's options ``values`` (written to ``OUT/launch.yaml``)."""
    import subprocess
    import sys

    import yaml

    section = config.train
    options = {k: v for k, v in values.items() if v is not None}  # None: unset, as load_config
    if section.config is not None:
        options = {"extends": str(Path(section.config).absolute()), **options}
    out.mkdir(parents=True, exist_ok=True)
    launch_file = out / "launch.yaml"
    launch_file.write_text(yaml.safe_dump(options, sort_keys=False))
    if section.launcher == "torchrun":
        # One machine; --standalone picks a free port (two runs side by side do not collide).
        launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node"]
        launcher.append(str(section.nproc))
    else:
        launcher = ["-m", "accelerate.commands.launch"]
        if section.accelerate_config is not None:
            launcher += ["--config_file", section.accelerate_config]
        if section.nproc is not None:
            launcher += ["--num_processes", str(section.nproc)]
    command = ["-m", "mixsd_train", "train", "--method", method.method, "--out", str(out)]
    command += ["--config", str(launch_file), "--resume"]
    if subprocess.run([sys.executable, *launcher, *command]).returncode != 0:
        raise UserError(f"{section.launcher} training of {method.label} failed (its output above)")


def _finished(out: Path) -> bool:
    """Whether the training in ``out`` ran to its end (its manifest says so). A run killed after
    that, before its unit was marked done, must not train again: the Trainer would log a
    0-step session's summary (train_loss 0) over the real one."""
    manifest = out / "manifest.json"
    return manifest.is_file() and read_json(manifest).get("status") == "complete"


def _sweep(
    ctx: RunContext,
    method: MethodSpec,
    out: Path,
    source: Artifact | None,
    data: TrainingData,
    grid: list[float],
) -> None:
    """One run per learning rate, then the rate whose selected checkpoint validates best."""
    from mixsd_train import select_learning_rate

    lr_runs, digests = {}, {}
    for lr in grid:
        folder = out / f"lr{lr:g}"
        unit = f"{method.label}@lr{lr:g}"
        digests[f"{lr:g}"] = _train_one(
            ctx, method, unit, folder, source, data, {"learning_rate": lr}
        )
        lr_runs[lr] = folder
    split = validation_split(ctx.config)
    settings = trainer_config(ctx.config, method, {})
    limit = settings.eval_limit  # as many validation records as the checkpoints' validation
    validation = {
        "split": split,
        "limit": limit,
        "max_new_tokens": settings.eval_max_new_tokens,
        "verifier": settings.eval_verifier,
    }
    inputs = {"runs": digests, "data": data.digest, "validation": validation}

    def build() -> None:
        records = read_jsonl(data.folder / f"{split}.jsonl")[:limit]
        scores = {}
        for lr, folder in lr_runs.items():
            checkpoint = read_json(folder / "selection.json")["checkpoint"]
            scores[lr] = validation_score(
                checkpoint,
                records,
                max_new_tokens=settings.eval_max_new_tokens,
                batch_size=max(settings.per_device_train_batch_size, 8),
                verifier=settings.eval_verifier,
            )
        selected_on = {**validation, "n": len(records)}
        select_learning_rate(out, lr_runs, scores, selected_on=selected_on)

    ctx.units.run("train", method.label, inputs, [out / "selection.json"], build)


def validation_score(checkpoint: str, records: list[dict[str, Any]], **options: Any) -> float:
    """A checkpoint's greedy accuracy on the validation records (a module attribute, so a test
    can stand in for the model's score)."""
    from mixsd_train import checkpoint_accuracy

    return float(checkpoint_accuracy(checkpoint, records, **options))


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
