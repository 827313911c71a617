"""Checkpoint selection rules on hand-made accuracy curves, and on a run folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mixsd_base import UserError
from mixsd_train import (
    TrainError,
    accuracy_curve,
    converged,
    first_peak,
    last,
    paper,
    pick_learning_rate,
    select_checkpoint,
    select_learning_rate,
)


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
        ((0.0, 0.0, 0.4, 0.8, 1.0, 1.0), 100),  # a flat start at 0 is no peak
        ((0.0, 0.0, 0.0), 60),  # nothing learned: the last
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


@pytest.mark.parametrize(
    ("train", "held", "step"),
    [
        # training reaches its best (0.9) at 60, validation stable after it: 60
        ((0.2, 0.6, 0.9, 0.9, 0.9), (0.1, 0.3, 0.5, 0.5, 0.48), 60),
        # rising curves: not the first checkpoint (the running maximum); the best training
        # accuracy is the last checkpoint, which has no successors: the fallback, the last
        ((0.1, 0.3, 0.5, 0.7), (0.05, 0.1, 0.2, 0.3), 80),
        # a validation drop of 10 points two checkpoints later disqualifies the first peak at
        # 40; the plateau's next checkpoint at the best (a tie counts) is stable: 60
        ((0.4, 1.0, 1.0, 1.0, 1.0, 1.0), (0.1, 0.6, 0.55, 0.5, 0.5, 0.5), 60),
        # a 6-point drop right after each checkpoint at the best: none confirmed, the last of them
        ((0.5, 1.0, 0.8, 1.0, 0.9, 0.9), (0.3, 0.5, 0.44, 0.5, 0.44, 0.44), 80),
        # the best only at the second-to-last checkpoint (one successor): cannot be confirmed
        ((0.1, 0.5, 0.9, 0.8), (0.1, 0.2, 0.3, 0.3), 60),
        # a drop of exactly 5 points is kept (0.55 - 0.5 is 0.05000000000000004 in floats)
        ((0.2, 0.9, 0.9, 0.9), (0.1, 0.55, 0.5, 0.5), 40),
        # a lower training accuracy later never wins, however stable its validation
        ((0.9, 0.5, 0.5, 0.5), (0.5, 0.2, 0.2, 0.2), 20),
        ((0.5,), (0.1,), 20),  # one checkpoint
    ],
)
def test_paper_rule(train: tuple[float, ...], held: tuple[float, ...], step: int) -> None:
    assert paper(curve(*train), curve(*held)) == step


def test_paper_rule_against_a_running_maximum() -> None:
    """Every checkpoint of a rising curve beats all earlier ones; read as a running maximum,
    the rule would pick the first checkpoint (validation near 0 cannot drop 5 points)."""
    rising = curve(0.1, 0.4, 0.8, 0.95, 0.95, 0.95)
    held = curve(0.0, 0.02, 0.2, 0.3, 0.31, 0.3)
    assert paper(rising, held) == 80


def test_paper_rule_needs_aligned_curves() -> None:
    with pytest.raises(TrainError, match="not at the same checkpoints"):
        paper(curve(0.1, 0.2), curve(0.1))
    with pytest.raises(TrainError, match="no validation accuracies"):
        paper([], [])


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


def test_last_selects_the_last_checkpoint_of_a_run_without_validation(tmp_path: Path) -> None:
    """eval_limit 0 logs no accuracy: 'last' still picks the last checkpoint (accuracy unknown,
    null), every other rule still says there is nothing to select from."""
    (tmp_path / "trainer_state.json").write_text(json.dumps({"log_history": [{"step": 8}]}))
    for step in (8, 16, 24):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-x").mkdir()  # not a checkpoint number
    selection = select_checkpoint(tmp_path, "last")
    assert (selection["step"], selection["val_accuracy"], selection["curve"]) == (24, None, [])
    assert selection["checkpoint"] == str(tmp_path / "checkpoint-24")
    with pytest.raises(TrainError, match="no validation accuracies"):
        select_checkpoint(tmp_path, "first-peak")


def test_selection_names_its_checkpoint_by_an_absolute_path(tmp_path, monkeypatch) -> None:
    """`mixsd select runs/x` from the run's parent: the report and evaluation read the path
    from elsewhere, so it must not be relative to where select ran."""
    run = tmp_path / "runs" / "x"
    (run / "checkpoint-4").mkdir(parents=True)
    (run / "trainer_state.json").write_text(json.dumps({"log_history": [{"step": 4}]}))
    monkeypatch.chdir(tmp_path)
    assert select_checkpoint("runs/x", "last")["checkpoint"] == str(run / "checkpoint-4")


def test_select_checkpoint_paper_reads_the_heldout_curve(tmp_path: Path) -> None:
    """selection.json of the paper rule: the held-out accuracy at the step and in the curve; a
    run without the held-out curve is one clear error; other rules ignore the curve."""
    train_accs, held_accs = (0.3, 0.9, 0.9, 0.9, 0.9), (0.1, 0.5, 0.3, 0.4, 0.4)
    history = [
        {"val_accuracy": a, "heldout_val_accuracy": h, "step": s}
        for (s, a), (_, h) in zip(curve(*train_accs), curve(*held_accs), strict=True)
    ]
    for step, _ in curve(*train_accs):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    assert accuracy_curve(tmp_path, "heldout_val_accuracy")[1] == (40, 0.5)
    selection = select_checkpoint(tmp_path, "paper")
    # 40 drops 20 points at 60: 60 (0.3 -> 0.4, 0.4) is the first stable one at the best
    assert (selection["rule"], selection["step"]) == ("paper", 60)
    assert (selection["val_accuracy"], selection["heldout_val_accuracy"]) == (0.9, 0.3)
    assert selection["curve"][0] == {"step": 20, "val_accuracy": 0.3, "heldout_val_accuracy": 0.1}
    assert json.loads((tmp_path / "selection.json").read_text()) == selection
    assert select_checkpoint(tmp_path, "first-peak")["step"] == 40

    history = [{"val_accuracy": a, "step": s} for s, a in curve(*train_accs)]
    (tmp_path / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    assert "heldout_val_accuracy" not in select_checkpoint(tmp_path, "last")
    with pytest.raises(TrainError, match=r"rule 'paper' needs the held-out validation curve"):
        select_checkpoint(tmp_path, "paper")


def test_pick_learning_rate() -> None:
    assert pick_learning_rate({1e-5: 0.4, 3e-5: 0.7, 1e-4: 0.6}) == 3e-5
    assert pick_learning_rate({1e-4: 0.5, 1e-6: 0.5, 1e-5: 0.2}) == 1e-6  # tie: the smaller
    with pytest.raises(TrainError, match="no learning rates"):
        pick_learning_rate({})


def _run_folder(folder: Path, accs: tuple[float, ...]) -> Path:
    """A finished training run: checkpoints, trainer state, MixSD's manifest, its selection."""
    history = [{"val_accuracy": a, "step": s} for s, a in curve(*accs)]
    for step, _ in curve(*accs):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    (folder / "manifest.json").write_text(json.dumps({"method": "mixsd"}))
    select_checkpoint(folder)
    return folder


def test_select_learning_rate_writes_the_chosen_run_and_links_it(tmp_path: Path) -> None:
    method = tmp_path / "mixsd-a0.3"
    runs = {
        1e-5: _run_folder(method / "lr1e-05", (0.2, 0.4)),
        1e-4: _run_folder(method / "lr0.0001", (0.5, 0.9, 0.8)),
    }
    (method / "checkpoint-20").mkdir()  # left by a run made here before the sweep
    selection = select_learning_rate(
        method, runs, {1e-5: 0.25, 1e-4: 0.75}, selected_on={"split": "kgfact/paraphrase"}
    )
    assert selection["learning_rate"] == 1e-4
    assert (selection["rule"], selection["step"]) == ("last", 60)
    assert selection["checkpoint"] == str(method / "checkpoint-60")
    assert selection["lr_sweep"]["selected_on"] == {"split": "kgfact/paraphrase"}
    rows = selection["lr_sweep"]["rows"]
    assert [(r["learning_rate"], r["val_score"], r["step"]) for r in rows] == [
        (1e-5, 0.25, 40),
        (1e-4, 0.75, 60),
    ]
    assert json.loads((method / "selection.json").read_text()) == selection
    links = sorted(p.name for p in method.glob("checkpoint-*"))
    assert links == ["checkpoint-20", "checkpoint-40", "checkpoint-60"]
    for name in links:  # relative links into the chosen run: they survive moving the folder
        link = method / name
        assert link.is_symlink() and not Path(link.readlink()).is_absolute()
        assert link.resolve() == (runs[1e-4] / name).resolve()
    # picked again with other scores: the old links go
    select_learning_rate(method, runs, {1e-5: 0.9, 1e-4: 0.1}, selected_on={})
    assert sorted(p.name for p in method.glob("checkpoint-*")) == ["checkpoint-20", "checkpoint-40"]
    assert (method / "checkpoint-20").resolve() == (runs[1e-5] / "checkpoint-20").resolve()


def test_checkpoint_accuracy_scores_a_saved_model(
    tiny_model_dir: Path, make_records: Callable[..., Any]
) -> None:
    """The sweep's validation score: the greedy replies of a model folder, verified."""
    import kgworld
    from mixsd_train import checkpoint_accuracy

    records = make_records(3)
    replies: list[str] = []

    def every_other(reply: str, answer: str) -> bool:
        replies.append(reply)
        return len(replies) % 2 == 1

    with kgworld.VERIFIERS.temporary("every-other", every_other):
        score = checkpoint_accuracy(
            str(tiny_model_dir), records, max_new_tokens=3, verifier="every-other"
        )
    assert len(replies) == 3 and score == pytest.approx(2 / 3)
    with kgworld.VERIFIERS.temporary("all", lambda reply, answer: True):
        assert (
            checkpoint_accuracy(str(tiny_model_dir), records, max_new_tokens=3, verifier="all")
            == 1.0
        )
