"""The ``fishertools`` command line (mounted as ``mixsd fisher``): ``compute`` and ``compare``.

Each command takes ``--config FILE``, ``--set key=value`` and one flag per field of its config
dataclass (mixsd_base.config_command), plus its own inputs and outputs; ``main`` is
mixsd_base.run_cli (``MIXSD_DEBUG=1`` for tracebacks). Model specs mean what they mean
everywhere (mixsd_core: ``default``, training folders, Hugging Face folders, hub ids).
``make_app(resolve=...)`` still takes a function mapping a spec to a folder, for callers that
resolve specs their own way. torch and transformers are imported inside the commands, so
``--help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from fishertools._config import CompareConfig, FisherConfig, FisherError
from fishertools._forgetting import MEASURE_NAMES
from mixsd_base import check_output, config_command, run_cli

__all__ = ["app", "main", "make_app"]

Resolver = Callable[[str], str | Path]

QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def make_app(resolve: Resolver | None = None) -> typer.Typer:
    """The Typer app; ``resolve`` (optional) turns a model spec into a folder first."""
    app = typer.Typer(
        name="fishertools",
        help="Diagonal Fisher of a base model, and where fine-tuning moved the weights.",
        no_args_is_help=True,
        add_completion=False,
    )

    def spec(value: str) -> str | Path:
        return resolve(value) if resolve is not None else value

    @app.command()
    @config_command(FisherConfig, lists=True)
    def compute(
        config: FisherConfig,
        model: Annotated[str, typer.Option(help="Base model: registry name, folder or hub id.")],
        data: Annotated[Path, typer.Option(help="JSONL of {prompt, response} records.")],
        out: Annotated[
            Path, typer.Option(help="Output .safetensors (a .manifest.json goes beside it).")
        ],
        overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
        quiet: QuietOption = False,
    ) -> None:
        """Estimate the diagonal empirical Fisher of MODEL on DATA and save it."""
        from fishertools._fisher import compute_fisher, save_fisher

        if out.suffix != ".safetensors":
            raise FisherError(f"must end in .safetensors: {out}", field="out")
        if out.exists() and not overwrite:
            raise FisherError("exists (pass --overwrite to replace it)", path=out.absolute())
        check_output(out)
        result = compute_fisher(spec(model), data, config, progress=not quiet)
        path = save_fisher(result, out)
        m = result.manifest
        typer.echo(
            f"wrote {path}: {m['num_params']:,} parameters in {m['num_tensors']} tensors, "
            f"{m['samples']} samples, mean F {m['mean_fisher']:.3e}, {m['seconds']:.1f} s"
        )

    @app.command(context_settings={"allow_extra_args": True})
    @config_command(CompareConfig)
    def compare(
        ctx: typer.Context,
        config: CompareConfig,
        fisher: Annotated[Path, typer.Option(help="A Fisher .safetensors written by compute.")],
        base: Annotated[str, typer.Option(help="The base model the Fisher was computed on.")],
        out: Annotated[Path, typer.Option(help="Report .json (a .png goes beside it).")],
        checkpoints: Annotated[
            list[Path] | None,
            typer.Option(
                help="Checkpoint folders (full or LoRA); several may follow one flag, e.g. a shell glob."
            ),
        ] = None,
        quiet: QuietOption = False,
    ) -> None:
        """Displacement, Fisher-weighted displacement and alignment of each checkpoint."""
        from fishertools._compare import compare_checkpoints

        extra = list(ctx.args)
        stray = [a for a in extra if a.startswith("-")]
        if stray:
            raise FisherError(f"unknown option {stray[0]}")
        paths = [*(checkpoints or []), *map(Path, extra)]
        if not paths:
            raise FisherError("give at least one checkpoint with --checkpoints")
        if out.suffix != ".json":
            raise FisherError(f"must end in .json: {out}", field="out")
        check_output(out)
        report = compare_checkpoints(fisher, spec(base), paths, config, out=out, progress=not quiet)
        for row in report["checkpoints"]:
            t = row["totals"]
            rho = "n/a" if t["rho"] is None else f"{t['rho']:.3f}"
            typer.echo(
                f"{row['name']}: |dθ|² {t['raw_sq']:.4e}  ΣFdθ² {t['fisher_weighted']:.4e}  ρ {rho}"
            )
        for measure, metrics in report["correlations"].items():
            for metric, stats in metrics.items():
                r, s = stats["pearson"], stats["spearman"]
                typer.echo(
                    f"{metric} vs {MEASURE_NAMES.get(measure, measure)} (n={stats['n']}): Pearson "
                    f"{'n/a' if r is None else f'{r:+.3f}'}, Spearman {'n/a' if s is None else f'{s:+.3f}'}"
                )
        typer.echo(f"wrote {out}" + (f" and {report['plot']}" if report.get("plot") else ""))

    return app


app = make_app()


def main() -> None:
    """Console entry point: a user error is one line on stderr and exit code 1."""
    run_cli(app)
