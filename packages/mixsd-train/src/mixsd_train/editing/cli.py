"""``mixsd edit``: apply knowledge edits to a model (MEMIT), writing an HF folder + manifest.

torch and transformers load inside the command, so ``mixsd --help`` stays fast. User errors
print one line and exit 1 (``MIXSD_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mixsd_train._cli_options import ConfigOption, ModelOption, SetOption
from mixsd_train._errors import TrainError
from mixsd_train.editing._run import EDIT_METHODS

__all__ = ["edit_command"]


def edit_command(
    edits: Annotated[Path, typer.Option(help="Edit requests JSONL (records with meta.rewrite).")],
    out: Annotated[Path, typer.Option(help="Output folder: the edited HF model + manifest.json.")],
    method: Annotated[str, typer.Option(help=f"One of: {', '.join(EDIT_METHODS)}.")] = "memit",
    model: ModelOption = None,
    layers: Annotated[
        str | None, typer.Option(help="Edited layers, e.g. 3-11 or 3,5,7 (default: by depth).")
    ] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output folder.")
    ] = False,
) -> None:
    """Edit facts into a model (MEMIT: closed-form updates of mlp.down_proj, all edits at once)."""
    from mixsd_train._config import load_config, parse_overrides
    from mixsd_train.editing._run import resolve_edit_method

    try:
        config_cls, run = resolve_edit_method(method)
        overrides = parse_overrides(set_ or [])
        overrides.update(edits=str(edits), output_dir=str(out))
        if model is not None:
            overrides["model"] = model
        if layers is not None:
            overrides["layers"] = layers
        if overwrite:
            overrides["overwrite"] = True
        settings = load_config(config_cls, config, overrides)  # type: ignore[type-var]
        manifest = run(settings)
    except TrainError as error:
        if os.environ.get("MIXSD_DEBUG"):
            raise
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=1) from None
    after = manifest["rewrite_accuracy"]["after"]
    before = manifest["rewrite_accuracy"]["before"]
    typer.echo(
        f"{out}: {method} {manifest['edits']['count']} edits at layers "
        f"{manifest['layers'][0]}-{manifest['layers'][-1]}, rewrite top-1 "
        f"{before['top1']:.0%} -> {after['top1']:.0%} (exact {after['exact']:.0%}) "
        f"in {sum(manifest['timings'].values()):.0f} s"
    )
