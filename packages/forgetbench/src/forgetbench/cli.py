"""The ``forgetbench`` command line (mounted by the umbrella as ``mixsd eval`` / ``mixsd data``).

``forgetbench eval`` (alias ``run``) evaluates one model; ``forgetbench data list|fetch`` shows and
caches benchmark data. Every command takes ``--config FILE``, ``--set key=value`` and one flag per
field of its dataclass (mixsd_base.config_command); ``main`` is mixsd_base.run_cli. torch,
transformers and lm-eval are imported inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from forgetbench._config import EvalConfig
from mixsd_base import check_output, config_command, run_cli

__all__ = ["DataConfig", "FetchConfig", "app", "data_app", "eval_command", "main"]

app = typer.Typer(
    name="forgetbench",
    help="How much did the model learn, and how much did it forget.",
    no_args_is_help=True,
    add_completion=False,
)
data_app = typer.Typer(help="Held-out benchmark data: list sources, fetch from the hub.")
app.add_typer(data_app, name="data")


@dataclass
class DataConfig:
    """Where ``forgetbench data`` looks for user-provided and fetched benchmark files."""

    data_dir: str | None = field(
        default=None,
        metadata={"help": "Folder of user / fetched data (default $FORGETBENCH_DATA)."},
    )


@dataclass
class FetchConfig(DataConfig):
    """``forgetbench data fetch``: where to cache, and whether to download again."""

    force: bool = field(default=False, metadata={"help": "Download again even if cached."})


# --suites / --tasks: repeatable, and each value may still be a comma list ("heldout,indomain").
@config_command(EvalConfig, lists=True, aliases={"suites": ("--suite",)})
def eval_command(config: EvalConfig) -> None:
    """Evaluate one model: held-out (lm-eval), in-domain, reference loss ΔL_ref, edits."""
    from forgetbench._runner import evaluate

    check_output(config.out)
    result = evaluate(config)
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
        se = ref.get("delta_l_ref_se")
        typer.echo(
            f"refloss   L_ref {ref['l_ref']:.4f}  ΔL_ref (token mean) {ref['delta_l_ref']:+.4f}"
            + (f" ± {se:.4f} (standard error over prompts)" if se is not None else "")
        )
    typer.echo(f"wrote {Path(config.out).expanduser().absolute()}")


app.command("eval")(eval_command)
app.command("run", hidden=True)(eval_command)  # alias


@data_app.command("list")
@config_command(DataConfig)
def data_list(
    config: DataConfig,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every benchmark: source, rows, and whether its data is available here."""
    from forgetbench._data import list_benchmarks

    rows = list_benchmarks(config.data_dir)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'name':10} {'kind':5} {'rows':>6} {'here':5} source")
    for row in rows:
        here = "yes" if row["available"] else "no"
        typer.echo(f"{row['name']:10} {row['kind']:5} {row['rows']:>6} {here:5} {row['source']}")


@data_app.command("fetch")
@config_command(FetchConfig)
def data_fetch(
    config: FetchConfig,
    name: Annotated[str, typer.Argument(help="aime24, math500 or gsm8k.")],
) -> None:
    """Download a benchmark from the hub (needs network) and cache it as JSONL."""
    from forgetbench._data import data_dir, fetch_benchmark

    check_output(data_dir(config.data_dir), folder=True)
    typer.echo(f"wrote {fetch_benchmark(name, folder=config.data_dir, force=config.force)}")


def main() -> None:
    """Console entry point: a user error is one line on stderr and exit code 1."""
    run_cli(app)
