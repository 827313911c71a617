"""Command line of mixsd-core: ``rollout`` and ``nll`` (mounted by the umbrella ``mixsd`` CLI).

torch and transformers are imported inside the command, so ``--help`` stays fast. User errors
(bad config, bad input file, unknown model, output from another run) print one line and exit 1;
set ``MIXSD_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import os
import time
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from mixsd_core._nll import DEFAULT_NLL_THRESHOLD, NLLConfig, NLLError
from mixsd_core._rollout_config import RolloutConfig, RolloutError

__all__ = ["app"]

app = typer.Typer(
    help="MixSD core: mixed rollouts and target NLL.", no_args_is_help=True, add_completion=False
)


@app.callback()
def _group() -> None:
    """MixSD core: mixed rollouts and target NLL."""


_HELP = {f.name: f.metadata.get("help", "") for f in fields(RolloutConfig)}


def _fail(error: Exception) -> typer.Exit:
    if os.environ.get("MIXSD_DEBUG"):
        raise error
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(code=1)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise RolloutError(f"{path}: cannot read config ({error})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise RolloutError(f"{path}: a config file must be a mapping of field: value")
    return values


@app.command()
def rollout(
    model: Annotated[str | None, typer.Option(help=_HELP["model"])] = None,
    data: Annotated[str | None, typer.Option(help=_HELP["data"])] = None,
    out: Annotated[str | None, typer.Option(help=_HELP["out"])] = None,
    alpha: Annotated[float | None, typer.Option(help=_HELP["alpha"])] = None,
    seed: Annotated[int | None, typer.Option(help=_HELP["seed"])] = None,
    batch_size: Annotated[int | None, typer.Option(help=_HELP["batch_size"])] = None,
    chunk_batches: Annotated[int | None, typer.Option(help=_HELP["chunk_batches"])] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help=_HELP["max_new_tokens"])] = None,
    max_retries: Annotated[int | None, typer.Option(help=_HELP["max_retries"])] = None,
    backend: Annotated[str | None, typer.Option(help=_HELP["backend"])] = None,
    verifier: Annotated[str | None, typer.Option(help=_HELP["verifier"])] = None,
    task: Annotated[str | None, typer.Option(help=_HELP["task"])] = None,
    prompt_style: Annotated[str | None, typer.Option(help=_HELP["prompt_style"])] = None,
    temperature: Annotated[float | None, typer.Option(help=_HELP["temperature"])] = None,
    top_p: Annotated[float | None, typer.Option(help=_HELP["top_p"])] = None,
    limit: Annotated[int | None, typer.Option(help=_HELP["limit"])] = None,
    device: Annotated[str | None, typer.Option(help=_HELP["device"])] = None,
    dtype: Annotated[str | None, typer.Option(help=_HELP["dtype"])] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help=_HELP["no_verify"])] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help=_HELP["overwrite"])] = False,
    config: Annotated[
        Path | None, typer.Option(help="YAML file of rollout fields; flags given here override it.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Build mixed MixSD targets for a JSONL of records (resumable; same config, same bytes)."""
    flags = {
        "model": model,
        "data": data,
        "out": out,
        "alpha": alpha,
        "seed": seed,
        "batch_size": batch_size,
        "chunk_batches": chunk_batches,
        "max_new_tokens": max_new_tokens,
        "max_retries": max_retries,
        "backend": backend,
        "verifier": verifier,
        "task": task,
        "prompt_style": prompt_style,
        "temperature": temperature,
        "top_p": top_p,
        "limit": limit,
        "device": device,
        "dtype": dtype,
        "no_verify": no_verify or None,  # a flag left off must not override the YAML file
        "overwrite": overwrite or None,
    }
    try:
        values = _read_yaml(config) if config is not None else {}
        values.update({k: v for k, v in flags.items() if v is not None})
        settings = RolloutConfig.from_dict(values)
    except (RolloutError, ValueError, TypeError) as error:
        raise _fail(error) from None

    from mixsd_core._rollout_io import run_rollout

    start = time.perf_counter()
    try:
        manifest = run_rollout(settings, progress=not quiet)
    except RolloutError as error:
        raise _fail(error) from None
    counts, seconds = manifest["counts"], time.perf_counter() - start
    typer.echo(
        f"{settings.out}: kept {counts['kept']}/{counts['examples']} "
        f"(drop rate {manifest['drop_rate']:.1%}), naive-token share "
        f"{manifest['naive_token_share']:.1%}, {counts['tokens']} target tokens, {seconds:.1f} s"
    )


_NLL_HELP = {f.name: f.metadata.get("help", "") for f in fields(NLLConfig)}


@app.command()
def nll(
    data: Annotated[str, typer.Option(help=_NLL_HELP["data"])],
    out: Annotated[str, typer.Option(help=_NLL_HELP["out"])],
    model: Annotated[str, typer.Option(help=_NLL_HELP["model"])] = "default",
    compare: Annotated[str | None, typer.Option(help=_NLL_HELP["compare"])] = None,
    threshold: Annotated[
        list[float] | None, typer.Option("--threshold", help=_NLL_HELP["thresholds"])
    ] = None,
    batch_size: Annotated[int, typer.Option(help=_NLL_HELP["batch_size"])] = 8,
    limit: Annotated[int | None, typer.Option(help=_NLL_HELP["limit"])] = None,
    quantiles: Annotated[int, typer.Option(help=_NLL_HELP["quantiles"])] = 101,
    all_records: Annotated[
        bool, typer.Option("--all-records", help=_NLL_HELP["all_records"])
    ] = False,
    device: Annotated[str | None, typer.Option(help=_NLL_HELP["device"])] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Per-token NLL of target files under a model given the naive prompt (JSON summary)."""
    try:
        settings = NLLConfig(
            model=model,
            data=data,
            out=out,
            compare=compare,
            thresholds=list(threshold or []),
            batch_size=batch_size,
            limit=limit,
            quantiles=quantiles,
            all_records=all_records,
            device=device,
        )
    except NLLError as error:
        raise _fail(error) from None

    from mixsd_core._nll import run_nll

    try:
        result = run_nll(settings, progress=not quiet)
    except RolloutError as error:
        raise _fail(error) from None
    key = f"{DEFAULT_NLL_THRESHOLD:g}"  # always among the thresholds: the headline number
    for role, summary in result["files"].items():
        typer.echo(
            f"{role} {summary['path']}: {summary['records']} records, {summary['tokens']} tokens, "
            f"mean NLL {summary['mean_nll']:.3f}, share > {key}: {summary['share_above'][key]:.2%}"
        )
    if result["overlap"]:
        o = result["overlap"][key]
        typer.echo(
            f"high-NLL token types (> {key}): data {o['data_types']}, compare "
            f"{o['compare_types']}, shared {o['shared']}, Jaccard {o['jaccard']:.3f}"
        )
    typer.echo(f"wrote {settings.out}")


def main() -> None:
    app()
