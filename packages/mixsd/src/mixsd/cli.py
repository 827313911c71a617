"""The ``mixsd`` command line: one Typer app that mounts each package's own sub-app.

Each entry of ``SUBCOMMANDS`` names where a package's Typer app (a group) or command
function lives; adding a stage is one line here. Heavy libraries (torch, transformers) are
imported inside commands, so ``mixsd --help`` stays fast.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import typer

app = typer.Typer(
    name="mixsd",
    help="MixSD: inject new knowledge into a language model without making it forget.",
    no_args_is_help=True,
    add_completion=False,
)

# (name, "module:attribute", kind): kind "group" mounts a Typer app, "command" one function.
SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("world", "kgworld.cli:app", "group"),
    ("rollout", "mixsd_core.cli:rollout", "command"),
    ("nll", "mixsd_core.cli:nll", "command"),
    ("models", "mixsd_core._models_cli:models_app", "group"),
    ("train", "mixsd_train.cli:train_command", "command"),
    ("select", "mixsd_train.cli:select_command", "command"),
    ("edit", "mixsd_train.editing.cli:edit_command", "command"),
    ("eval", "forgetbench.cli:eval_command", "command"),
    ("data", "forgetbench.cli:data_app", "group"),
    ("fisher", "mixsd._mounts:fisher_app", "group"),
    ("run", "mixsd._run_cli:run_command", "command"),
    ("report", "mixsd._run_cli:report_command", "command"),
]

# Exceptions that mean "the user asked for something impossible": one line, exit code 1.
USER_ERRORS: list[str] = [
    "kgworld:KGWorldError",
    "mixsd_core:ModelError",
    "mixsd_core:RolloutError",
    "fishertools:FisherError",
    "mixsd_train:TrainError",
    "forgetbench:EvalError",
    "mixsd._run_config:RunError",
]


def _resolve(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


for _name, _target, _kind in SUBCOMMANDS:
    if _kind == "group":
        app.add_typer(_resolve(_target), name=_name)
    else:
        app.command(_name)(_resolve(_target))


@app.command()
def version() -> None:
    """Print the version of every workspace package."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    for dist in ("mixsd", "kgworld", "mixsd-core", "mixsd-train", "forgetbench", "fishertools"):
        try:
            typer.echo(f"{dist} {dist_version(dist)}")
        except PackageNotFoundError:
            continue


def main() -> None:
    """Console entry point; set MIXSD_DEBUG=1 for full tracebacks of user errors."""
    errors = tuple(_resolve(target) for target in USER_ERRORS)
    try:
        app()
    except errors as exc:
        if os.environ.get("MIXSD_DEBUG"):
            raise
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
