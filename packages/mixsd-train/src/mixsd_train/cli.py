"""Command line of mixsd-train: ``train`` and ``select`` (mounted by the umbrella ``mixsd`` CLI).

Both commands take ``--config FILE`` and ``--set key=value`` (mixsd_base.config_command). The
config class of ``train`` depends on ``--method``, and importing it means importing
``transformers`` (seconds), which ``mixsd --help`` must not pay: so ``train`` gets no generated
flags, only ``--model``, ``--data`` and ``--out``, which set the fields of those names. torch
and transformers are imported inside the commands. User errors print one line and exit 1
(mixsd_base.run_cli; ``MIXSD_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from mixsd_base import check_output, config_command, run_cli
from mixsd_train._fields import MODEL_HELP
from mixsd_train._run import METHODS
from mixsd_train._select import SelectConfig

__all__ = ["app", "main", "select_command", "train_command"]

app = typer.Typer(
    help="MixSD training: sft, mixsd, mixsd-kl, opsd, opsd-nll; checkpoint selection.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """MixSD training: sft, mixsd, mixsd-kl, opsd, opsd-nll; checkpoint selection."""


def _method_config(params: dict[str, Any]) -> type:
    from mixsd_train._run import resolve_method

    return resolve_method(params["method"])[0]


@app.command("train")
@config_command(
    None,
    choose=_method_config,
    param_fields={"out": "output_dir", "model": "model", "data": "data"},
)
def train_command(
    config: Any,
    method: Annotated[str, typer.Option(help=f"One of: {', '.join(METHODS)}.")],
    out: Annotated[str, typer.Option(help="Run folder (checkpoints, final model, manifest).")],
    model: Annotated[str | None, typer.Option(help=MODEL_HELP)] = None,
    data: Annotated[
        str | None, typer.Option(help="Records JSONL (sft, opsd*) or rollout JSONL (mixsd*).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the latest checkpoint in --out.")
    ] = False,
) -> None:
    """Fine-tune a model with one of the methods; writes OUT/checkpoint-N/ and the final model."""
    from mixsd_train._run import train

    check_output(config.output_dir, folder=True)
    start = time.perf_counter()
    trainer = train(method, config, resume=resume)
    if not trainer.is_world_process_zero():  # torchrun / accelerate launch: one summary line
        return
    accuracies = [e["val_accuracy"] for e in trainer.state.log_history if "val_accuracy" in e]
    last = f", last val_accuracy {accuracies[-1]:.3f}" if accuracies else ""
    typer.echo(
        f"{out}: {method} {trainer.state.global_step} steps in "
        f"{time.perf_counter() - start:.0f} s{last}"
    )


@app.command("select")
@config_command(SelectConfig)
def select_command(
    config: SelectConfig,
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `train`.")],
) -> None:
    """Pick the checkpoint to report; prints it and records RUN_DIR/selection.json."""
    from mixsd_train._select import select_checkpoint

    check_output(run_dir / "selection.json")
    selection = select_checkpoint(run_dir, config.rule)
    typer.echo(
        f"{selection['checkpoint']} (rule {selection['rule']}, "
        f"val_accuracy {selection['val_accuracy']:.3f})"
    )


def main() -> None:
    run_cli(app)
