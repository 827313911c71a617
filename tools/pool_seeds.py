"""Issue 18's training frontier pooled over seeds: the same run config at several seeds (one run
folder each), each adaptive MixSD method against every other trained method, per seed and pooled.

Pooled, each reference prompt's summed NLL (and each held-out item's score) is averaged over the
seeds before the paired difference is taken over the prompts (items), so its standard error is
the prompt-to-prompt noise of the seeds' mean; a seed-wide shift is not in it (two or three seeds
cannot estimate one), which is why each seed is also shown alone.

    uv run python tools/pool_seeds.py runs/cpu-frontier-fill runs/cpu-frontier-fill-seed1
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mixsd._report import collect, training_accuracy
from mixsd._training_frontier import paired_difference, paired_heldout_difference


def _diff(value: tuple[float, float | None] | None, scale: float, digits: int) -> str:
    if value is None:
        return "–"
    mean, se = value
    shown = f"{mean * scale:+.{digits}f}"
    if se is None:
        return shown
    return f"{shown} ± {se * scale:.{digits}f}" + (f" ({abs(mean) / se:.1f} SE)" if se else "")


def pooled_tables(run_dirs: list[Path]) -> str:
    """The markdown: each method's accuracy and ΔL_ref per seed, then each adaptive method minus
    every other method, in ΔL_ref (nats/token) and, where measured, held-out points."""
    runs = [collect(folder) for folder in run_dirs]
    by_label = [{r["label"]: r for r in data["rows"]} for data in runs]
    labels = [label for label in by_label[0] if all(label in rows for rows in by_label)]
    trained = [label for label in labels if by_label[0][label]["refloss"] is not None]

    def seeds(label: str) -> list[dict[str, Any]]:
        return [rows[label] for rows in by_label]

    lines = [
        f"Pooled over {len(runs)} runs: {', '.join(str(p) for p in run_dirs)}",
        "",
        "| method | training accuracy per run (%) | ΔL_ref per run |",
        "|---|---|---|",
    ]
    for label in trained:
        deltas = " / ".join(f"{row['refloss']:+.4f}" for row in seeds(label))
        accuracy = [
            training_accuracy(row, data["run"].get("split"))
            for row, data in zip(seeds(label), runs, strict=True)
        ]
        lines.append(
            f"| {label} | {' / '.join('–' if a is None else f'{a * 100:.1f}' for a in accuracy)} "
            f"| {deltas} |"
        )
    lines += [
        "",
        "| adaptive − other | ΔL_ref per run | ΔL_ref pooled | held-out (points) per run "
        "| held-out pooled |",
        "|---|---|---|---|---|",
    ]
    adaptive = [label for label in trained if by_label[0][label].get("rollout_options")]
    for label in adaptive:
        for other in (o for o in trained if o != label and by_label[0][o]["method"] != "base"):
            mine, theirs = seeds(label), seeds(other)
            per_run = [paired_difference(a, b) for a, b in zip(mine, theirs, strict=True)]
            held = [paired_heldout_difference(a, b) for a, b in zip(mine, theirs, strict=True)]
            lines.append(
                f"| {label} − {other} | {' / '.join(_diff(d, 1, 4) for d in per_run)} "
                f"| {_diff(paired_difference(mine, theirs), 1, 4)} "
                f"| {' / '.join(_diff(d, 100, 1) for d in held)} "
                f"| {_diff(paired_heldout_difference(mine, theirs), 100, 1)} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="mixsd run folders, one per seed")
    args = parser.parse_args()
    print(pooled_tables(args.runs))


if __name__ == "__main__":
    main()
