"""Which checkpoint a run reports, from the accuracies in its ``trainer_state.json``.

Training logs up to two curves (``[(step, accuracy), ...]`` in step order), one point per
checkpoint: ``val_accuracy`` on the first ``eval_limit`` training records (training accuracy, in
``mixsd run`` every training fact) and, with ``validation_data``, ``heldout_val_accuracy`` on a
held-out validation split (in ``mixsd run`` the learning-rate sweep's split). Rules on the
training curve alone:

* ``first_peak`` (the authors' code's SFT rule, ``mixsd/eval/first_peak.py``): the first checkpoint that
  is a new running maximum and is followed by a non-increase; the last one if none is.
* ``converged`` (the issue's wording): the earliest checkpoint after which accuracy stays within
  ``tolerance`` (0.05 = 5 points) over the next ``window`` checkpoints, in *both* directions.
  A drop-only test would pick the first point of every rising curve (accuracy near 0 cannot drop
  5 points), which is not "converged". Needs ``window`` later checkpoints; else the last.
* ``last`` (the authors' code's MixSD and OPSD rule).

``auto`` = ``first_peak`` for sft, ``last`` for every other method (the authors' code).

One rule reads both curves, ``paper`` (Appendix D: "the first checkpoint that achieves the best
training performance observed so far while maintaining stable validation performance, i.e.,
without a validation performance drop greater than 5% over the following two consecutive
checkpoints"); see :func:`paper` for how its words are read.

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

from mixsd_base import Registry, check_fields, read_json, write_json
from mixsd_train._errors import TrainError

__all__ = [
    "HELDOUT_KEY",
    "RULES",
    "TRAINING_KEY",
    "Rule",
    "SelectConfig",
    "accuracy_curve",
    "converged",
    "first_peak",
    "last",
    "paper",
    "pick_learning_rate",
    "select_checkpoint",
    "select_learning_rate",
]

Curve = Sequence[tuple[int, float]]

# The trainer-state keys of the two curves (written by mixsd_train._validation).
TRAINING_KEY = "val_accuracy"  # the first eval_limit training records (or eval_data)
HELDOUT_KEY = "heldout_val_accuracy"  # the held-out validation_data


def _need(curve: Curve) -> None:
    if not curve:
        raise TrainError("no validation accuracies to select from (was eval_limit 0?)")


def first_peak(curve: Curve) -> int:
    """The authors' rule: the first new running maximum followed by a non-increase. A maximum
    of 0 is no peak: a run that starts flat at 0 (nothing learned yet, as a short CPU schedule's
    first checkpoints) would otherwise select its first, untrained checkpoint."""
    _need(curve)
    best = 0.0
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


def paper(curve: Curve, validation: Curve, *, tolerance: float = 0.05, window: int = 2) -> int:
    """The paper's rule: the first checkpoint whose training accuracy is the best of the run
    and after which validation accuracy drops by at most ``tolerance`` at each of the next
    ``window`` checkpoints.

    How the paper's words are read:

    * "the best training performance observed so far": the best training accuracy of the run
      (every checkpoint observed when the run is selected), and a tie achieves it (``>=``).
      Reading it as a running maximum (``>=`` every *earlier* checkpoint) makes the first
      checkpoint of every rising curve qualify (nothing precedes it; a validation accuracy near
      0 cannot drop 5 points), which is not "the earliest checkpoint after convergence". A tie
      counts so that a plateau at the best accuracy (say 100% of the facts) can still be picked
      at its first stable point when the validation curve drops right after its first checkpoint.
    * "a drop greater than 5%": accuracies are shares, so 5 points absolute (0.05), measured
      from this checkpoint's validation accuracy to each of the next two; a drop of exactly 5
      points is kept. (5% relative to an accuracy near 0 would be no tolerance at all.)
    * A checkpoint with fewer than ``window`` later checkpoints cannot be confirmed. When no
      checkpoint at the best training accuracy is confirmed, the last one at it is picked (on
      a still-rising curve: the last checkpoint, as the other rules fall back).
    """
    _need(curve)
    steps = [step for step, _ in curve]
    if [step for step, _ in validation] != steps:
        raise TrainError(
            "the training and validation curves are not at the same checkpoints: "
            f"{steps} vs {[step for step, _ in validation]}"
        )
    best = max(acc for _, acc in curve)
    held = [acc for _, acc in validation]
    at_best = [i for i, (_, acc) in enumerate(curve) if acc >= best]
    for i in at_best:
        later = held[i + 1 : i + 1 + window]
        # 1e-9: 0.55 - 0.5 is 0.05000000000000004 in floating point, not a drop above 5 points
        if len(later) == window and all(held[i] - acc <= tolerance + 1e-9 for acc in later):
            return steps[i]
    return steps[at_best[-1]]


@dataclass(frozen=True)
class Rule:
    """A selection rule: ``pick(training curve)``, or ``pick(training curve, validation
    curve)`` when it ``needs_validation``."""

    pick: Callable[..., int]
    needs_validation: bool = False


RULES: Registry[Rule] = Registry(
    "selection rule",
    {
        "first-peak": Rule(first_peak),
        "converged": Rule(converged),
        "last": Rule(last),
        "paper": Rule(paper, needs_validation=True),
    },
)


@dataclass
class SelectConfig:
    """``mixsd select``: which rule picks the checkpoint a run reports."""

    rule: str = field(
        default="auto",
        metadata={
            "help": "auto (sft: first-peak, else last), first-peak, converged, last, or paper "
            "(Appendix D; needs the held-out validation curve: train with validation_data).",
            "choices": lambda: ("auto", *RULES),  # read when checked: RULES is defined below
        },
    )

    def __post_init__(self) -> None:
        check_fields(self, error=TrainError)  # a bad rule names its config file and line


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


def accuracy_curve(run_dir: str | Path, key: str = TRAINING_KEY) -> list[tuple[int, float]]:
    """``[(step, accuracy), ...]`` of the logged ``key`` (training accuracy, or
    :data:`HELDOUT_KEY`) at the checkpoints that still exist on disk."""
    run_dir = Path(run_dir)
    state = read_json(
        _state_file(run_dir),
        what="trainer state",
        required=("log_history",),
        types={"log_history": list},
    )
    history = state["log_history"]
    points = {int(e["step"]): float(e[key]) for e in history if key in e}
    return [(s, a) for s, a in sorted(points.items()) if (run_dir / f"checkpoint-{s}").is_dir()]


def select_checkpoint(run_dir: str | Path, rule: str = "auto") -> dict[str, Any]:
    """Apply ``rule`` to a run, write ``selection.json`` beside it and return what it says.

    ``selection.json``: ``rule``, ``step``, ``checkpoint``, ``val_accuracy`` (training accuracy
    at the step; null for rule ``last`` on a run trained without validation) and ``curve``
    (``[{step, val_accuracy}]``); a run that logged the held-out
    validation curve adds ``heldout_val_accuracy`` at the step and in each curve point.
    """
    run_dir = Path(run_dir).absolute()  # selection.json is read from other folders
    if rule == "auto":
        manifest = run_dir / "manifest.json"
        method = read_json(manifest).get("method") if manifest.is_file() else None
        rule = "first-peak" if method == "sft" else "last"
    chosen = RULES.get_or_fail(rule, field="rule")
    curve: list[tuple[int, float | None]] = list(accuracy_curve(run_dir))
    validation = accuracy_curve(run_dir, HELDOUT_KEY)
    if rule == "last" and not curve:
        # 'last' reads no accuracy: a run trained without validation (eval_limit 0, e.g. to
        # spare CPU hours of generation) selects its last checkpoint, accuracy unknown.
        steps = sorted(
            int(p.name.removeprefix("checkpoint-"))
            for p in run_dir.glob("checkpoint-*")
            if p.is_dir() and p.name.removeprefix("checkpoint-").isdigit()
        )
        if steps:
            curve = [(step, None) for step in steps]
    if not chosen.needs_validation:
        step = chosen.pick(curve)
    elif validation:
        step = chosen.pick(curve, validation)
    else:
        raise TrainError(
            f"rule {rule!r} needs the held-out validation curve ({HELDOUT_KEY} in "
            "trainer_state.json), which this run did not log: train it with validation_data",
            path=run_dir.absolute(),
        )
    held = dict(validation)
    selection: dict[str, Any] = {
        "rule": rule,
        "step": step,
        "checkpoint": str(run_dir / f"checkpoint-{step}"),
        TRAINING_KEY: dict(curve)[step],
    }
    if step in held:
        selection[HELDOUT_KEY] = held[step]
    selection["curve"] = [
        {"step": s, TRAINING_KEY: a, **({HELDOUT_KEY: held[s]} if s in held else {})}
        for s, a in curve
        if a is not None
    ]
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
                "train_accuracy": picked[TRAINING_KEY],
                **({HELDOUT_KEY: picked[HELDOUT_KEY]} if HELDOUT_KEY in picked else {}),
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
