"""Stage ``report``: report.md and the plots, from the run's files (``mixsd report`` alone
rewrites them without running anything)."""

from __future__ import annotations

from typing import Any

from mixsd._context import RunContext
from mixsd_base import file_sha256

__all__ = ["run"]


def run(ctx: RunContext, index: dict[str, Any]) -> None:
    from mixsd._report import write_report

    files = [*index["nll"].values(), *index["evals"].values()]
    files += [index[k] for k in ("fisher", "frontier") if index.get(k)]
    inputs = {"run": index, "inputs": {f: file_sha256(f) for f in files}}
    ctx.units.run(
        "report", "report", inputs, [ctx.paths.report], lambda: write_report(ctx.paths.root)
    )
