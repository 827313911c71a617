"""``mixsd edit``: apply knowledge edits to a model (MEMIT), writing an HF folder + manifest.

``--config FILE``, ``--set key=value`` and one flag per field of ``MEMITConfig``
(mixsd_base.config_command; ``output_dir`` is ``--out``). torch and transformers load inside the
command, so ``mixsd --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mixsd_base import check_output, config_command
from mixsd_train.editing._config import MEMITConfig
from mixsd_train.editing._run import EDIT_METHODS

__all__ = ["edit_command"]


def _method_config(params: dict[str, Any]) -> type:
    from mixsd_train.editing._run import resolve_edit_method

    return resolve_edit_method(params["method"])[0]


@config_command(
    MEMITConfig,
    choose=_method_config,
    rename={"output_dir": "out"},
    param_fields={"layers": "layers"},
)
def edit_command(
    config: Any,
    method: Annotated[str, typer.Option(help=f"One of: {', '.join(EDIT_METHODS)}.")] = "memit",
    layers: Annotated[
        str | None, typer.Option(help="Edited layers, e.g. 3-11 or 3,5,7 (default: by depth).")
    ] = None,
) -> None:
    """Edit facts into a model (MEMIT: closed-form updates of mlp.down_proj, all edits at once)."""
    from mixsd_train.editing._run import resolve_edit_method

    _, run = resolve_edit_method(method)
    check_output(config.output_dir, folder=True)
    manifest = run(config)
    after = manifest["rewrite_accuracy"]["after"]
    before = manifest["rewrite_accuracy"]["before"]
    typer.echo(
        f"{config.output_dir}: {method} {manifest['edits']['count']} edits at layers "
        f"{manifest['layers'][0]}-{manifest['layers'][-1]}, rewrite top-1 "
        f"{before['top1']:.0%} -> {after['top1']:.0%} (exact {after['exact']:.0%}) "
        f"in {sum(manifest['timings'].values()):.0f} s"
    )
