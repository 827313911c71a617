"""Command line of mixsd-core (console script ``mixsd-core``; the umbrella ``mixsd`` mounts the
same ``rollout`` and ``nll`` commands, and ``models``).

Each command takes ``--config FILE``, ``--set key=value`` and one flag per field of its config
dataclass (``RolloutConfig``, ``NLLConfig``), built by ``mixsd_base.config_command``: defaults <
file < ``--set`` < flags. torch and transformers are imported inside the commands, so ``--help``
stays fast. User errors (bad config, bad input file, unknown model, output from another run) are
``mixsd_base.UserError``s, which ``main`` (``mixsd_base.run_cli``) prints as one line with exit
status 1; ``MIXSD_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from mixsd_base import check_output, config_command, run_cli
from mixsd_core._models_cli import models_app
from mixsd_core._nll import DEFAULT_NLL_THRESHOLD, NLLConfig
from mixsd_core._rollout_config import RolloutConfig

__all__ = ["app", "main", "nll", "rollout"]

app = typer.Typer(
    name="mixsd-core",
    help="MixSD core: mixed rollouts, target NLL and the packaged models.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(models_app, name="models")

Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]


@app.command()
@config_command(RolloutConfig)
def rollout(config: RolloutConfig, quiet: Quiet = False) -> None:
    """Build mixed MixSD targets for a JSONL of records (resumable; same config, same bytes)."""
    from mixsd_core._rollout_stage import run_rollout

    check_output(config.out)
    start = time.perf_counter()
    manifest = run_rollout(config, progress=not quiet)
    counts, seconds = manifest["counts"], time.perf_counter() - start
    typer.echo(
        f"{config.out}: kept {counts['kept']}/{counts['examples']} "
        f"(drop rate {manifest['drop_rate']:.1%}), naive-token share "
        f"{manifest['naive_token_share']:.1%}, {counts['tokens']} target tokens, {seconds:.1f} s"
    )
    if "decoder_passes" in manifest:  # a traced run (adaptive mixing, repair or trace)
        share = manifest["effective_naive_share"]
        typer.echo(
            f"mixing {config.mixing}: naive share over disagreements "
            f"{'–' if share is None else f'{share:.1%}'} "
            f"({manifest['disagreement_positions']} positions), "
            f"{manifest['decoder_passes']} decoder passes"
        )


@app.command()
@config_command(NLLConfig, lists=True, aliases={"thresholds": ("--threshold",)})
def nll(config: NLLConfig, quiet: Quiet = False) -> None:
    """Per-token NLL of target files under a model given the naive prompt (JSON summary)."""
    from mixsd_core._nll import run_nll

    check_output(config.out)
    result = run_nll(config, progress=not quiet)
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
        paired = result["paired"]
        shares = [paired[side]["share_above"][key] for side in ("data", "compare")]
        typer.echo(
            f"paired (the {paired['n']} ids in both files): share > {key} data "
            + ", compare ".join("–" if v is None else f"{v:.2%}" for v in shares)
        )
    typer.echo(f"wrote {config.out}")


def main() -> None:
    """The ``mixsd-core`` console script."""
    run_cli(app)
