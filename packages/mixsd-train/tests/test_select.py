"""Checkpoint selection rules on hand-made accuracy curves, and on a run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixsd_base import UserError
from mixsd_train import TrainError, accuracy_curve, converged, first_peak, last, select_checkpoint


def curve(*accs: float) -> list[tuple[int, float]]:
    return [(20 * (i + 1), a) for i, a in enumerate(accs)]


@pytest.mark.parametrize(
    ("accs", "step"),
    [
        ((0.1, 0.5, 0.5, 0.9), 40),  # new max then a flat step
        ((0.1, 0.5, 0.4, 0.9, 0.8), 40),  # new max then a drop
        ((0.2, 0.4, 0.6, 0.8), 80),  # never peaks: the last
        ((0.7, 0.6, 0.9, 0.9), 20),  # the first point can be the peak
        ((0.3, 0.3, 0.8, 0.7), 20),  # a tie right after a new max counts as a non-increase
        ((0.5,), 20),
    ],
)
def test_first_peak(accs: tuple[float, ...], step: int) -> None:
    assert first_peak(curve(*accs)) == step


@pytest.mark.parametrize(
    ("accs", "step"),
    [
        ((0.0, 0.3, 0.9, 0.92, 0.88, 0.9), 60),  # plateau from 0.9 on
        ((0.9, 0.7, 0.9, 0.9, 0.9), 60),  # 0.9 at step 20 drops 20 points right after
        ((0.1, 0.2, 0.4, 0.8), 80),  # still rising: the last
        ((0.5, 0.53, 0.49), 20),
    ],
)
def test_converged(accs: tuple[float, ...], step: int) -> None:
    assert converged(curve(*accs)) == step


def test_last_and_empty() -> None:
    assert last(curve(0.1, 0.2)) == 40
    with pytest.raises(TrainError, match="no validation accuracies"):
        first_peak([])


def test_select_checkpoint_on_a_run_folder(tmp_path: Path) -> None:
    history = [{"loss": 1.0, "step": 20}]
    history += [{"val_accuracy": a, "step": s} for s, a in curve(0.2, 0.6, 0.5, 0.9)]
    for step in (20, 40, 60, 80):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    (tmp_path / "manifest.json").write_text(json.dumps({"method": "sft"}))
    assert accuracy_curve(tmp_path)[0] == (20, 0.2)
    selection = select_checkpoint(tmp_path)
    assert (selection["rule"], selection["step"]) == ("first-peak", 40)
    assert json.loads((tmp_path / "selection.json").read_text())["step"] == 40
    (tmp_path / "manifest.json").write_text(json.dumps({"method": "mixsd"}))
    assert select_checkpoint(tmp_path)["step"] == 80
    with pytest.raises(UserError, match="unknown selection rule 'best'"):
        select_checkpoint(tmp_path, "best")
    with pytest.raises(TrainError, match=r"no trainer_state\.json"):
        select_checkpoint(tmp_path / "checkpoint-20")
