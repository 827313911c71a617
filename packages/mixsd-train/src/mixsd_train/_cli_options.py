"""Typer options shared by ``mixsd train`` and ``mixsd edit`` (one wording, one place)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["ConfigOption", "ModelOption", "SetOption"]

ModelOption = Annotated[
    str | None, typer.Option(help="Model: 'default', a folder, a .gguf or a hub id.")
]
ConfigOption = Annotated[
    Path | None, typer.Option(help="YAML of config fields; --set and flags override it.")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override one config field: key=value (repeatable)."),
]
