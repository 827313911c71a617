"""``mixsd run CONFIG`` and ``mixsd report RUN_DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["report_command", "run_command"]


def run_command(
    config: Annotated[Path, typer.Argument(help="Run config YAML (e.g. configs/quickstart.yaml).")],
    set_: Annotated[
        list[str],
        typer.Option("--set", help="Override a top-level key: out=runs/x, seed=1 (repeatable)."),
    ] = [],  # noqa: B006 - Typer reads the default, never mutates it
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Run world -> rollouts -> training -> selection -> evaluation -> Fisher -> report.

    Steps whose inputs did not change are reused; an interrupted run resumes where it stopped.
    """
    from mixsd._pipeline import run_pipeline
    from mixsd._run_config import load_run_config
    from mixsd_train import parse_overrides  # the same key=value (YAML value) rule as train

    run_config = load_run_config(config, parse_overrides(set_))
    result, summary = run_pipeline(run_config, progress=not quiet)
    typer.echo(summary)
    report = Path(run_config.out) / "report.md"
    if report.is_file():
        typer.echo(f"report: {report}")
    del result


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A folder written by mixsd run.")],
) -> None:
    """Write RUN_DIR/report.md and RUN_DIR/plots/*.png from a finished run."""
    from mixsd._report import write_report

    typer.echo(f"report: {write_report(run_dir)}")
