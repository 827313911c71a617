"""The ``forgetbench`` command line (mounted by the umbrella as ``mixsd eval`` / ``mixsd data``).

``forgetbench eval`` (alias ``run``) evaluates one model; ``forgetbench data list|fetch`` shows and
caches benchmark data. torch, transformers and lm-eval are imported inside the commands, so
``--help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from forgetbench._errors import EvalError

__all__ = ["app", "data_app", "eval_command", "main"]

app = typer.Typer(
    name="forgetbench",
    help="How much did the model learn, and how much did it forget.",
    no_args_is_help=True,
    add_completion=False,
)
data_app = typer.Typer(help="Held-out benchmark data: list sources, fetch from the hub.")
app.add_typer(data_app, name="data")


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value is not None else None


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise EvalError(f"{path.absolute()}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise EvalError(f"{path.absolute()}: invalid YAML ({exc})") from None
    if not isinstance(values, dict):
        raise EvalError(f"{path.absolute()}: the YAML root must be a mapping")
    return values


def eval_command(
    model: Annotated[str | None, typer.Option(help="Model: registry name, folder, .gguf.")] = None,
    out: Annotated[str | None, typer.Option(help="Output JSON, e.g. evals/NAME.json.")] = None,
    suites: Annotated[
        str | None,
        typer.Option("--suites", "--suite", help="heldout,indomain,refloss (default) or edit"),
    ] = None,
    tasks: Annotated[
        str | None, typer.Option(help="Held-out lm-eval tasks, comma-separated.")
    ] = None,
    world: Annotated[str | None, typer.Option(help="kgworld folder (in-domain, leakage).")] = None,
    edits: Annotated[
        str | None, typer.Option(help="Folder holding edit/ for the edit suite (default --world).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Examples per task / split.")] = None,
    base: Annotated[str | None, typer.Option(help="Base model's eval JSON (retention).")] = None,
    base_model: Annotated[str | None, typer.Option(help="Base model for L_ref.")] = None,
    allow_code_exec: Annotated[
        bool | None, typer.Option("--allow-code-exec", help="Run generated HumanEval code.")
    ] = None,
    paper_sampling: Annotated[
        bool | None, typer.Option("--paper-sampling", help="Temperature 1.0, 16 AIME samples.")
    ] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Held-out generation cap.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Rows per forward pass.")] = None,
    data_dir: Annotated[str | None, typer.Option(help="Folder of user / fetched data.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML with EvalConfig keys.")
    ] = None,
) -> None:
    """Evaluate one model: held-out (lm-eval), in-domain, reference-loss forgetting, edits."""
    from forgetbench._config import EvalConfig
    from forgetbench._runner import evaluate

    values = _read_yaml(config) if config is not None else {}
    cli = {
        "model": model,
        "out": out,
        "suites": _split(suites),
        "tasks": _split(tasks),
        "world": world,
        "edits": edits,
        "limit": limit,
        "base": base,
        "base_model": base_model,
        "allow_code_exec": allow_code_exec,
        "paper_sampling": paper_sampling,
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
        "data_dir": data_dir,
        "device": device,
    }
    values.update({k: v for k, v in cli.items() if v is not None})  # None means "not given"
    for required in ("model", "out"):
        if required not in values:
            raise EvalError(f"--{required} is required (or set it in --config)")
    result = evaluate(EvalConfig.from_dict(values))
    for suite in ("heldout", "indomain", "edit"):
        for task, entry in result.get(suite, {}).items():
            shown = (
                f"{entry['score']:.4f} (n={entry['n']})" if "score" in entry else entry["skipped"]
            )
            if "old_answer_share" in entry:
                shown += f"  old answer {entry['old_answer_share']:.4f}"
            typer.echo(f"{suite:9} {task:20} {shown}")
    if "refloss" in result:
        ref = result["refloss"]
        typer.echo(f"refloss   L_ref {ref['l_ref']:.4f}  forgetting {ref['forgetting']:+.4f}")
    typer.echo(f"wrote {Path(values['out']).expanduser().absolute()}")


app.command("eval")(eval_command)
app.command("run", hidden=True)(eval_command)  # alias


@data_app.command("list")
def data_list(
    data_dir: Annotated[str | None, typer.Option(help="Folder of user / fetched data.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every benchmark: source, rows, and whether its data is available here."""
    from forgetbench._data import list_benchmarks

    rows = list_benchmarks(data_dir)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'name':10} {'kind':5} {'rows':>6} {'here':5} source")
    for row in rows:
        here = "yes" if row["available"] else "no"
        typer.echo(f"{row['name']:10} {row['kind']:5} {row['rows']:>6} {here:5} {row['source']}")


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="aime24, math500 or gsm8k.")],
    data_dir: Annotated[str | None, typer.Option(help="Where to cache the JSONL.")] = None,
    force: Annotated[bool, typer.Option(help="Download again even if cached.")] = False,
) -> None:
    """Download a benchmark from the hub (needs network) and cache it as JSONL."""
    from forgetbench._data import fetch_benchmark

    typer.echo(f"wrote {fetch_benchmark(name, folder=data_dir, force=force)}")


def main() -> None:
    """Console entry point: bad input becomes one line on stderr and exit code 1."""
    try:
        app()
    except EvalError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
