"""``mixsd run CONFIG`` and ``mixsd report RUN_DIR``: both take ``--config FILE`` and
``--set key=value`` (a.b=v for nested keys), like every other command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mixsd._report import ReportConfig
from mixsd_base import ConfigError, check_output, config_command

__all__ = ["report_command", "run_command"]


def run_command(
    config: Annotated[
        Path | None,
        typer.Argument(help="Run config YAML (e.g. configs/quickstart.yaml).", show_default=False),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="The run config, as an option.", show_default=False),
    ] = None,
    set_items: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a key: out=runs/x, rollout.max_retries=5 (YAML value; repeatable).",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Run world -> rollouts -> training -> selection -> evaluation -> Fisher -> report.

    Steps whose inputs did not change are reused; an interrupted run resumes where it stopped.
    """
    from mixsd._pipeline import run_pipeline
    from mixsd._run_config import load_run_config
    from mixsd_base import parse_overrides

    path = config or config_file
    if path is None or (config is not None and config_file is not None):
        raise ConfigError("name the run config once: mixsd run CONFIG (or --config CONFIG)")
    run_config = load_run_config(path, parse_overrides(set_items or []))
    check_output(run_config.out, folder=True, what="run folder")  # fail before any work
    _, summary = run_pipeline(run_config, progress=not quiet)
    typer.echo(summary)
    if run_config.paths.report.is_file():
        typer.echo(f"report: {Path(run_config.out) / 'report.md'}")


@config_command(ReportConfig)
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A folder written by mixsd run.")],
    config: ReportConfig,
) -> None:
    """Write RUN_DIR/report.md and RUN_DIR/plots/*.png from a finished run."""
    from mixsd._report import write_report

    check_output(run_dir / "report.md")
    check_output(run_dir / "plots", folder=True)
    typer.echo(f"report: {write_report(run_dir, config)}")
