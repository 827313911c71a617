"""The ``fishertools`` command line (mounted as ``mixsd fisher``): ``compute`` and ``compare``.

``make_app(resolve=...)`` builds the Typer app; ``resolve`` maps a model spec to a folder, so
the umbrella CLI can plug in its registry (``default`` -> the converted SmolLM2 folder) without
this package importing it. ``app`` is the app with no registry: specs are folders or hub ids.
torch and transformers are imported inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from fishertools._config import CompareConfig, FisherConfig, FisherError, load_config

__all__ = ["app", "main", "make_app"]

Resolver = Callable[[str], str | Path]

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML/JSON config; flags override it.")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def make_app(resolve: Resolver | None = None) -> typer.Typer:
    """The Typer app; ``resolve`` turns a model spec (e.g. a registry name) into a folder."""
    app = typer.Typer(
        name="fishertools",
        help="Diagonal Fisher of a base model, and where fine-tuning moved the weights.",
        no_args_is_help=True,
        add_completion=False,
    )

    def spec(value: str) -> str | Path:
        return resolve(value) if resolve is not None else value

    @app.command()
    def compute(
        model: Annotated[str, typer.Option(help="Base model: a Hugging Face folder or hub id.")],
        data: Annotated[Path, typer.Option(help="JSONL of {prompt, response} records.")],
        out: Annotated[
            Path, typer.Option(help="Output .safetensors (a .manifest.json goes beside it).")
        ],
        samples: Annotated[
            int | None, typer.Option(help="Use the first N records (default: all).")
        ] = None,
        chunk_size: Annotated[
            int | None, typer.Option(help="Per-sample gradients per vmap chunk (default 8).")
        ] = None,
        include: Annotated[
            list[str] | None,
            typer.Option(help="Keep parameters matching (fnmatch, or re:REGEX); repeatable."),
        ] = None,
        exclude: Annotated[
            list[str] | None, typer.Option(help="Drop parameters matching; repeatable.")
        ] = None,
        max_length: Annotated[
            int | None, typer.Option(help="Truncate conversations to N tokens (default 1024).")
        ] = None,
        reduction: Annotated[
            str | None,
            typer.Option(help="Per-sample NLL: mean (default) or sum over response tokens."),
        ] = None,
        method: Annotated[
            str | None, typer.Option(help="vmap (default) or loop (the reference).")
        ] = None,
        dtype: Annotated[
            str | None, typer.Option(help="Model dtype: float32 (default), bfloat16, float16.")
        ] = None,
        device: Annotated[str | None, typer.Option(help="torch device (default cpu).")] = None,
        overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
        config: ConfigOption = None,
        quiet: QuietOption = False,
    ) -> None:
        """Estimate the diagonal empirical Fisher of MODEL on DATA and save it."""
        from fishertools._fisher import compute_fisher, save_fisher

        overrides = {
            "samples": samples, "chunk_size": chunk_size, "include": include or None,
            "exclude": exclude or None, "max_length": max_length, "reduction": reduction,
            "method": method, "dtype": dtype, "device": device,
        }  # fmt: skip
        fisher_config = load_config(FisherConfig, config, overrides)
        if out.suffix != ".safetensors":
            raise FisherError(f"--out must end in .safetensors: {out}")
        if out.exists() and not overwrite:
            raise FisherError(f"{out.absolute()} exists (pass --overwrite to replace it)")
        result = compute_fisher(spec(model), data, fisher_config, progress=not quiet)
        path = save_fisher(result, out)
        m = result.manifest
        typer.echo(
            f"wrote {path}: {m['num_params']:,} parameters in {m['num_tensors']} tensors, "
            f"{m['samples']} samples, mean F {m['mean_fisher']:.3e}, {m['seconds']:.1f} s"
        )

    @app.command(context_settings={"allow_extra_args": True})
    def compare(
        ctx: typer.Context,
        fisher: Annotated[Path, typer.Option(help="A Fisher .safetensors written by compute.")],
        base: Annotated[str, typer.Option(help="The base model the Fisher was computed on.")],
        out: Annotated[Path, typer.Option(help="Report .json (a .png goes beside it).")],
        checkpoints: Annotated[
            list[Path] | None,
            typer.Option(
                help="Checkpoint folders (full or LoRA); several may follow one flag, e.g. a shell glob."
            ),
        ] = None,
        forgetting: Annotated[
            Path | None, typer.Option(help="Forgetting: JSON mapping or folder of eval JSON files.")
        ] = None,
        loss_data: Annotated[
            Path | None,
            typer.Option(help="JSONL to measure each checkpoint's reference-loss increase on."),
        ] = None,
        loss_samples: Annotated[
            int | None, typer.Option(help="Records of --loss-data used (default 32).")
        ] = None,
        batch_size: Annotated[
            int | None, typer.Option(help="Batch size of loss measurement (default 8).")
        ] = None,
        plot: Annotated[
            bool | None, typer.Option("--plot/--no-plot", help="Write the PNG (default yes).")
        ] = None,
        device: Annotated[str | None, typer.Option(help="torch device (default cpu).")] = None,
        config: ConfigOption = None,
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
        overrides = {
            "forgetting": forgetting, "loss_data": loss_data, "loss_samples": loss_samples,
            "batch_size": batch_size, "plot": plot, "device": device,
        }  # fmt: skip
        compare_config = load_config(CompareConfig, config, overrides)
        if out.suffix != ".json":
            raise FisherError(f"--out must end in .json: {out}")
        report = compare_checkpoints(
            fisher, spec(base), paths, compare_config, out=out, progress=not quiet
        )
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
                    f"{metric} vs {measure} (n={stats['n']}): Pearson "
                    f"{'n/a' if r is None else f'{r:+.3f}'}, Spearman {'n/a' if s is None else f'{s:+.3f}'}"
                )
        typer.echo(f"wrote {out}" + (f" and {report['plot']}" if report.get("plot") else ""))

    return app


app = make_app()


def main() -> None:
    """Console entry point: a FisherError is one line on stderr and exit code 1.

    Set FISHERTOOLS_DEBUG=1 for the traceback.
    """
    try:
        app()
    except FisherError as exc:
        if os.environ.get("FISHERTOOLS_DEBUG"):
            raise
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
