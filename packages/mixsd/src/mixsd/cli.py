"""The ``mixsd`` command line: one Typer app that mounts each package's own sub-app.

Each entry of ``SUBCOMMANDS`` names where a package's Typer app (a group) or command
function lives; adding a stage is one line here. Heavy libraries (torch, transformers) are
imported inside commands, so ``mixsd --help`` stays fast. Errors: every package's user errors
subclass ``mixsd_base.UserError``, which ``main`` (mixsd_base.run_cli) prints as one line.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer

from mixsd_base import package_versions, run_cli

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
    ("frontier", "mixsd._frontier:frontier_command", "command"),
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
    for dist, number in package_versions().items():
        typer.echo(f"{dist} {number}")


def main() -> None:
    """Console entry point; set MIXSD_DEBUG=1 for full tracebacks of user errors."""
    run_cli(app)
