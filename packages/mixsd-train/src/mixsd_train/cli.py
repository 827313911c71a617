"""Command line of mixsd-train: ``train`` and ``select`` (mounted by the umbrella ``mixsd`` CLI).

torch and transformers are imported inside the commands, so ``--help`` stays fast. User errors
print one line and exit 1; set ``MIXSD_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from mixsd_train._cli_options import ConfigOption, ModelOption, SetOption
from mixsd_train._errors import TrainError
from mixsd_train._run import METHODS

__all__ = ["app", "main"]

app = typer.Typer(
    help="MixSD training: sft, mixsd, mixsd-kl, opsd, opsd-nll; checkpoint selection.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """MixSD training: sft, mixsd, mixsd-kl, opsd, opsd-nll; checkpoint selection."""


def _fail(error: Exception) -> typer.Exit:
    if os.environ.get("MIXSD_DEBUG"):
        raise error
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(code=1)


@app.command("train")
def train_command(
    method: Annotated[str, typer.Option(help=f"One of: {', '.join(METHODS)}.")],
    out: Annotated[Path, typer.Option(help="Run folder (checkpoints, final model, manifest).")],
    model: ModelOption = None,
    data: Annotated[
        Path | None, typer.Option(help="Records JSONL (sft, opsd*) or rollout JSONL (mixsd*).")
    ] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the latest checkpoint in --out.")
    ] = False,
) -> None:
    """Fine-tune a model with one of the methods; writes OUT/checkpoint-N/ and the final model."""
    from mixsd_train._config import load_config, parse_overrides
    from mixsd_train._run import resolve_method, train

    start = time.perf_counter()
    try:
        config_cls, _, _ = resolve_method(method)
        overrides = parse_overrides(set_ or [])
        overrides["output_dir"] = str(out)
        if model is not None:
            overrides["model"] = model
        if data is not None:
            overrides["data"] = str(data)
        settings = load_config(config_cls, config, overrides)
        trainer = train(method, settings, resume=resume)
    except TrainError as error:
        raise _fail(error) from None
    accuracies = [e["val_accuracy"] for e in trainer.state.log_history if "val_accuracy" in e]
    last = f", last val_accuracy {accuracies[-1]:.3f}" if accuracies else ""
    typer.echo(
        f"{out}: {method} {trainer.state.global_step} steps in "
        f"{time.perf_counter() - start:.0f} s{last}"
    )


@app.command("select")
def select_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `train`.")],
    rule: Annotated[
        str, typer.Option(help="auto (sft: first-peak, else last), first-peak, converged, last.")
    ] = "auto",
) -> None:
    """Pick the checkpoint to report; prints it and records RUN_DIR/selection.json."""
    from mixsd_train._select import select_checkpoint

    try:
        selection = select_checkpoint(run_dir, rule)
    except TrainError as error:
        raise _fail(error) from None
    typer.echo(
        f"{selection['checkpoint']} (rule {selection['rule']}, "
        f"val_accuracy {selection['val_accuracy']:.3f})"
    )


def main() -> None:
    app()
