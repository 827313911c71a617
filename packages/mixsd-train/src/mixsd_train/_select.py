"""Which checkpoint a run reports, from the validation accuracies in its ``trainer_state.json``.

Rules (plain functions of a curve = ``[(step, accuracy), ...]`` in step order):

* ``first_peak`` (the paper's SFT rule, ``mixsd/eval/first_peak.py``): the first checkpoint that
  is a new running maximum and is followed by a non-increase; the last one if none is.
* ``converged`` (the issue's wording): the earliest checkpoint after which accuracy stays within
  ``tolerance`` (0.05 = 5 points) over the next ``window`` checkpoints, in *both* directions.
  A drop-only test would pick the first point of every rising curve (accuracy near 0 cannot drop
  5 points), which is not "converged". Needs ``window`` later checkpoints; else the last.
* ``last`` (the paper's MixSD and OPSD rule).

``auto`` = ``first_peak`` for sft, ``last`` for every other method.

A learning-rate sweep (``mixsd run`` with ``train.lr_grid``) trains one run per rate, each with
its own checkpoint selection; :func:`pick_learning_rate` keeps the rate whose selected
checkpoint scores best on the validation split, and :func:`select_learning_rate` writes the
method's ``selection.json`` for it, with the sweep table, and links the chosen run's checkpoints
into the method's folder, so every reader of ``FOLDER/checkpoint-*`` sees the chosen run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixsd_base import Registry, read_json, write_json
from mixsd_train._errors import TrainError

__all__ = [
    "RULES",
    "SelectConfig",
    "accuracy_curve",
    "converged",
    "first_peak",
    "last",
    "pick_learning_rate",
    "select_checkpoint",
    "select_learning_rate",
]

Curve = Sequence[tuple[int, float]]


def _need(curve: Curve) -> None:
    if not curve:
        raise TrainError("no validation accuracies to select from (was eval_limit 0?)")


def first_peak(curve: Curve) -> int:
    _need(curve)
    best = float("-inf")
    for i, (step, acc) in enumerate(curve):
        if acc > best:
            best = acc
            if i + 1 < len(curve) and curve[i + 1][1] <= acc:
                return step
    return curve[-1][0]


def converged(curve: Curve, *, tolerance: float = 0.05, window: int = 2) -> int:
    _need(curve)
    for i, (step, acc) in enumerate(curve[: len(curve) - window]):
        if all(abs(later - acc) <= tolerance for _, later in curve[i + 1 : i + 1 + window]):
            return step
    return curve[-1][0]


def last(curve: Curve) -> int:
    _need(curve)
    return curve[-1][0]


RULES: Registry[Callable[[Curve], int]] = Registry(
    "selection rule", {"first-peak": first_peak, "converged": converged, "last": last}
)


@dataclass
class SelectConfig:
    """``mixsd select``: which rule picks the checkpoint a run reports."""

    rule: str = field(
        default="auto",
        metadata={"help": "auto (sft: first-peak, else last), first-peak, converged, last."},
    )


def _state_file(run_dir: Path) -> Path:
    """The run's own trainer_state.json, else the one of its latest checkpoint."""
    if (run_dir / "trainer_state.json").is_file():
        return run_dir / "trainer_state.json"
    checkpoints = sorted(
        run_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name[11:])
    )
    if not checkpoints:
        raise TrainError("no trainer_state.json (not a training run?)", path=run_dir.absolute())
    return checkpoints[-1]


def accuracy_curve(run_dir: str | Path) -> list[tuple[int, float]]:
    """``[(step, val_accuracy), ...]`` of the checkpoints that still exist on disk."""
    run_dir = Path(run_dir)
    history = read_json(_state_file(run_dir), what="trainer state")["log_history"]
    points = {int(e["step"]): float(e["val_accuracy"]) for e in history if "val_accuracy" in e}
    return [(s, a) for s, a in sorted(points.items()) if (run_dir / f"checkpoint-{s}").is_dir()]


def select_checkpoint(run_dir: str | Path, rule: str = "auto") -> dict[str, Any]:
    """Apply ``rule`` to a run, write ``selection.json`` beside it and return what it says."""
    run_dir = Path(run_dir)
    if rule == "auto":
        manifest = run_dir / "manifest.json"
        method = read_json(manifest).get("method") if manifest.is_file() else None
        rule = "first-peak" if method == "sft" else "last"
    pick = RULES.get_or_fail(rule, field="rule")
    curve = accuracy_curve(run_dir)
    step = pick(curve)
    selection = {
        "rule": rule,
        "step": step,
        "checkpoint": str(run_dir / f"checkpoint-{step}"),
        "val_accuracy": dict(curve)[step],
        "curve": [{"step": s, "val_accuracy": a} for s, a in curve],
    }
    write_json(run_dir / "selection.json", selection)
    return selection


def pick_learning_rate(scores: Mapping[float, float]) -> float:
    """The learning rate with the best validation score; a tie goes to the smaller rate (the
    one that moves the weights least)."""
    if not scores:
        raise TrainError("no learning rates to pick from")
    return min(scores, key=lambda lr: (-scores[lr], lr))


def select_learning_rate(
    out_dir: str | Path,
    runs: Mapping[float, str | Path],
    scores: Mapping[float, float],
    *,
    selected_on: Mapping[str, Any],
) -> dict[str, Any]:
    """The sweep's result for one method: ``out_dir/selection.json`` is the chosen rate's
    checkpoint selection (read from its run folder's ``selection.json``) plus ``learning_rate``
    and ``lr_sweep`` (``selected_on`` and one row per rate), and ``out_dir/checkpoint-N`` are
    relative links to the chosen run's checkpoints (stale ``checkpoint-*`` entries go first).
    """
    out_dir = Path(out_dir)
    chosen = pick_learning_rate(scores)
    rows = []
    for lr in sorted(runs):
        picked = read_json(Path(runs[lr]) / "selection.json", what="checkpoint selection")
        rows.append(
            {
                "learning_rate": lr,
                "val_score": scores[lr],
                "step": picked["step"],
                "train_accuracy": picked["val_accuracy"],
                "run": str(Path(runs[lr])),
            }
        )
    run_dir = Path(runs[chosen])
    for stale in out_dir.glob("checkpoint-*"):
        if stale.is_symlink() or stale.is_file():
            stale.unlink()
        else:  # a checkpoint of a training run made here before the sweep (other inputs)
            shutil.rmtree(stale)
    for checkpoint in sorted(run_dir.glob("checkpoint-*")):
        if checkpoint.is_dir():
            (out_dir / checkpoint.name).symlink_to(
                os.path.relpath(checkpoint, out_dir), target_is_directory=True
            )
    selection = read_json(run_dir / "selection.json", what="checkpoint selection")
    selection.update(
        checkpoint=str(out_dir / f"checkpoint-{selection['step']}"),
        run=str(run_dir),
        learning_rate=chosen,
        lr_sweep={"selected_on": dict(selected_on), "rows": rows},
    )
    write_json(out_dir / "selection.json", selection)
    return selection
