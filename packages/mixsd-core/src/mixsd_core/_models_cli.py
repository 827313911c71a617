"""``mixsd models list|convert``: the registry of packaged models and their safetensors cache."""

from __future__ import annotations

from typing import Annotated

import typer

from mixsd_core._model_registry import list_models, mixsd_home
from mixsd_core._models import convert_model

models_app = typer.Typer(
    name="models",
    help="Packaged models: list them, convert one to a safetensors folder in the cache.",
    no_args_is_help=True,
    add_completion=False,
)


def _size(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.0f}MB"


@models_app.command("list")
def list_command() -> None:
    """Show each registry model: installed (packages present), converted (cache complete)."""
    infos = list_models()
    rows = [("NAME", "INSTALLED", "CONVERTED", "PATH", "SIZE")]
    for info in infos:
        rows.append(
            (
                info.name,
                "yes" if info.installed else "no",
                "yes" if info.converted else "no",
                str(info.path),
                _size(info.size_bytes),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    # Why a model is not installed and how to install it, on stderr so the table stays parseable.
    for info in infos:
        if not info.installed:
            typer.echo(f"# {info.name}: not installed; {info.install_hint}", err=True)
    typer.echo(f"# cache: {mixsd_home() / 'models'} (set MIXSD_HOME to move it)", err=True)


@models_app.command("convert")
def convert_command(
    name: Annotated[str, typer.Argument(help="A registry name, e.g. 'default'.")],
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if converted.")] = False,
) -> None:
    """Convert a registry model's GGUF to a safetensors folder now (otherwise done on first use)."""
    typer.echo(str(convert_model(name, force=force)))
