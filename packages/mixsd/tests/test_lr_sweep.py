"""``mixsd run`` with ``train.lr_grid``: one training unit per learning rate, the rate picked on
the validation split, its checkpoints handed on, nothing retrained on a second run; and the
on-policy teacher prompt worded as the rollouts' (``rollout.prompt_style``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mixsd.cli import app


def _config(tmp: Path, model: Path, **changes: Any) -> Path:
    config: dict[str, Any] = {
        "out": str(tmp / "run"),
        "model": str(model),
        "world": {"preset": "small", "kgfunc": {"enabled": False}},
        "data": {"split": "kgfact/train", "limit": 2, "indomain": ["paraphrase"]},
        "methods": ["base", "sft"],
        "train": {
            "lr_grid": [1e-4, 1e-3],
            "max_steps": 2,
            "save_steps": 1,
            "per_device_train_batch_size": 2,
            "global_batch_size": 2,
            "warmup_steps": 0,
            "eval_limit": 2,
            "eval_max_new_tokens": 4,
            "logging_steps": 1,
        },
        "eval": {"suites": ["indomain"], "limit": 2, "indomain_max_new_tokens": 4},
        "fisher": None,
        "report": False,
    }
    config.update(changes)
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def scored(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """A validation score that favours the larger rate (a random tiny model scores 0 at any
    rate); every call is recorded as (checkpoint, number of validation records)."""
    from mixsd._stages import train as train_stage

    calls: list[tuple[str, int]] = []

    def score(checkpoint: str, records: list[dict[str, Any]], **options: Any) -> float:
        calls.append((checkpoint, len(records)))
        return 0.8 if "/lr0.001/" in checkpoint else 0.3

    monkeypatch.setattr(train_stage, "validation_score", score)
    yield calls


def _statuses(run: Path) -> dict[tuple[str, str], str]:
    """(stage, unit) -> status of the training and evaluation units, from run.json."""
    units = json.loads((run / "run.json").read_text())["units"]
    return {(u["stage"], u["name"]): u["status"] for u in units if u["stage"] in ("train", "eval")}


@pytest.mark.slow
def test_sweep_trains_each_rate_picks_on_validation_and_resumes(
    tmp_path: Path, tiny_model_dir: Path, scored: list[tuple[str, int]]
) -> None:
    runner = CliRunner()
    config = _config(tmp_path, tiny_model_dir)
    first = runner.invoke(app, ["run", str(config), "--quiet"])
    assert first.exit_code == 0, first.output
    run = tmp_path / "run"
    method = run / "train" / "sft"
    for lr in ("lr0.0001", "lr0.001"):  # both rates trained, each its own run and selection
        state = json.loads((method / lr / "trainer_state.json").read_text())
        assert state["global_step"] == 2
        rates = {e["learning_rate"] for e in state["log_history"] if "learning_rate" in e}
        assert rates == {float(lr[2:])}
        assert (method / lr / "selection.json").is_file()
    # each rate's selected checkpoint scored on the paraphrase split (2 records: eval_limit)
    assert sorted(scored) == [
        (str(method / "lr0.0001" / "checkpoint-2"), 2),
        (str(method / "lr0.001" / "checkpoint-2"), 2),
    ]  # SFT's rule: the first peak; the tiny model's curve is flat at 0, no peak: the last
    selection = json.loads((method / "selection.json").read_text())
    assert selection["learning_rate"] == 1e-3
    assert selection["checkpoint"] == str(method / "checkpoint-2")
    assert selection["lr_sweep"]["selected_on"]["split"] == "kgfact/paraphrase"
    assert selection["lr_sweep"]["selected_on"]["n"] == 2
    table = [(r["learning_rate"], r["val_score"]) for r in selection["lr_sweep"]["rows"]]
    assert table == [(1e-4, 0.3), (1e-3, 0.8)]
    for name in ("checkpoint-1", "checkpoint-2"):  # the chosen run's checkpoints, linked
        assert (method / name).resolve() == (method / "lr0.001" / name).resolve()
    index = json.loads((run / "run.json").read_text())
    assert index["runs"]["sft"]["learning_rate"] == 1e-3
    assert index["runs"]["sft"]["lr_sweep"] == selection["lr_sweep"]
    evaluated = json.loads((run / "eval" / "sft.json").read_text())
    assert json.dumps(evaluated).count(str(method / "checkpoint-2")) >= 1

    # The same config again: every training unit and the pick are reused, nothing is scored.
    scored.clear()
    again = runner.invoke(app, ["run", str(config), "--quiet"])
    assert again.exit_code == 0, again.output
    statuses = _statuses(run)
    assert {k[1] for k in statuses if k[0] == "train"} == {"sft@lr0.0001", "sft@lr0.001", "sft"}
    assert set(statuses.values()) == {"reused"}, again.output
    assert scored == []

    # A third rate: only it trains, then the pick is redone over all three.
    grid = {**yaml.safe_load(config.read_text())["train"], "lr_grid": [1e-4, 1e-3, 3e-3]}
    wider = _config(tmp_path, tiny_model_dir, train=grid)
    third = runner.invoke(app, ["run", str(wider), "--quiet"])
    assert third.exit_code == 0, third.output
    statuses = _statuses(run)
    assert statuses[("train", "sft@lr0.0001")] == "reused"
    assert statuses[("train", "sft@lr0.003")] == "ran"
    assert statuses[("train", "sft")] == "redone"
    assert len(json.loads((method / "selection.json").read_text())["lr_sweep"]["rows"]) == 3


def test_method_with_its_own_learning_rate_is_not_swept(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    from mixsd._run_config import load_run_config
    from mixsd._stages.train import learning_rates

    methods = ["base", "sft", {"method": "opsd", "train": {"learning_rate": 5e-6}}]
    config = load_run_config(_config(tmp_path, tiny_model_dir, methods=methods))
    sft, opsd = config.trained
    assert learning_rates(config, sft) == [1e-4, 1e-3]
    assert learning_rates(config, opsd) is None


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"lr_grid": []}, r"field 'train\.lr_grid': give at least one learning rate"),
        ({"lr_grid": [1e-4, -1e-3]}, r"field 'train\.lr_grid': learning rates must be > 0"),
        ({"lr_grid": [1e-4, 1e-4]}, r"field 'train\.lr_grid': a learning rate appears twice"),
        ({"prompt_style": "clear"}, r"field 'train\.prompt_style': set from rollout"),
    ],
)
def test_bad_train_section(tmp_path: Path, tiny_model_dir: Path, changes: dict, error: str) -> None:
    from mixsd._run_config import load_run_config
    from mixsd_base import UserError

    path = _config(tmp_path, tiny_model_dir, train={"max_steps": 2, **changes})
    with pytest.raises(UserError, match=error) as info:
        load_run_config(path)
    assert str(info.value).startswith(str(path))


def test_sweep_needs_its_validation_split(tmp_path: Path, tiny_model_dir: Path) -> None:
    from mixsd._run_config import load_run_config
    from mixsd_base import UserError

    data = {"split": "kgfact/train", "limit": 2, "indomain": ["twohop"]}
    with pytest.raises(UserError, match=r"train\.lr_grid': .*kgfact/paraphrase: add paraphrase"):
        load_run_config(_config(tmp_path, tiny_model_dir, data=data))


@pytest.mark.parametrize("style", ["clear", "paper"])
def test_on_policy_teacher_prompt_is_worded_as_the_rollouts(
    tmp_path: Path, tiny_model_dir: Path, style: str
) -> None:
    """OPSD's (and OPSD-NLL's) teacher prompt takes the run's rollout.prompt_style."""
    from mixsd._run_config import load_run_config
    from mixsd._stages.train import trainer_config

    methods = ["base", "sft", "opsd", "opsd-nll"]
    config = load_run_config(
        _config(tmp_path, tiny_model_dir, methods=methods, rollout={"prompt_style": style})
    )
    for method in config.trained:
        assert trainer_config(config, method, {}).prompt_style == style


def test_paper_configs_carry_the_paper_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    """configs/paper: KGFact 20 epochs, KGFunc 100 steps with a checkpoint every 10, global
    batch 16 after 20 warmup steps, the rate swept; OPSD 8 rollouts at T = 1, 2 epochs, the
    paper's teacher wording."""
    from mixsd._run_config import load_run_config
    from mixsd._stages.train import learning_rates, trainer_config

    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    for path in sorted(Path("configs/paper").glob("[!_]*.yaml")):
        config = load_run_config(path)
        kgfunc = config.data.split.startswith("kgfunc/")
        assert config.train.lr_grid == [1e-6, 3e-6, 1e-5, 3e-5, 1e-4], path
        assert config.select == "paper", path  # Appendix D's checkpoint rule
        for method in config.trained:
            settings = trainer_config(config, method, {})
            assert (settings.global_batch_size, settings.warmup_steps) == (16, 20)
            assert settings.lr_scheduler_type == "constant_with_warmup"
            assert settings.prompt_style == "paper"
            assert learning_rates(config, method) == config.train.lr_grid
            if kgfunc:
                assert (settings.max_steps, settings.save_steps) == (100, 10), path
            else:
                assert settings.max_steps == -1 and settings.save_steps == 20
                qa = config.data.split.startswith("qa/")  # SimpleQA: one epoch
                epochs = 2 if method.method.startswith("opsd") else 1 if qa else 20
                assert settings.num_train_epochs == epochs, (path, method.label)
            if method.method == "opsd":
                assert (settings.num_generations, settings.temperature) == (8, 1.0)
                assert settings.top_k == 64
            if method.method.startswith("opsd"):
                assert settings.max_new_tokens == 8192


@pytest.mark.slow
def test_paper_rule_logs_both_curves_and_selects_every_method_by_it(
    tmp_path: Path, tiny_model_dir: Path, scored: list[tuple[str, int]]
) -> None:
    """select: paper: every method's training validates each checkpoint on the training facts
    (val_accuracy) and on the sweep's validation split (heldout_val_accuracy), and is selected
    by the paper's rule; the sweep still scores each rate's selected checkpoint."""
    config = _config(
        tmp_path,
        tiny_model_dir,
        methods=["base", "sft", "opsd-nll"],
        select="paper",
        train={
            **yaml.safe_load(_config(tmp_path, tiny_model_dir).read_text())["train"],
            "lr_grid": [1e-3],
            "max_new_tokens": 4,  # OPSD-NLL's rollouts
        },
    )
    result = CliRunner().invoke(app, ["run", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    index = json.loads((run / "run.json").read_text())
    for label in ("sft", "opsd-nll"):
        folder = run / "train" / label / "lr0.001"
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["validation_data"]["path"].endswith("kgfact/paraphrase.jsonl")
        state = json.loads((folder / "trainer_state.json").read_text())
        points = [e for e in state["log_history"] if "val_accuracy" in e]
        assert [(e["step"], e["val_n"], e["heldout_val_n"]) for e in points] == [
            (1, 2.0, 2.0),
            (2, 2.0, 2.0),
        ]
        selection = json.loads((run / "train" / label / "selection.json").read_text())
        assert selection["rule"] == "paper"
        # a flat training curve is at its best at both; neither has two successors: the last
        assert selection["step"] == 2
        assert [set(p) for p in selection["curve"]] == [
            {"step", "val_accuracy", "heldout_val_accuracy"}
        ] * 2
        assert "heldout_val_accuracy" in selection["lr_sweep"]["rows"][0]
        assert index["runs"][label]["rule"] == "paper"
    assert sorted(scored) == [
        (str(run / "train" / label / "lr0.001" / "checkpoint-2"), 2)
        for label in ("opsd-nll", "sft")
    ]


def test_paper_rule_needs_the_validation_split(tmp_path: Path, tiny_model_dir: Path) -> None:
    from mixsd._run_config import load_run_config
    from mixsd_base import UserError

    data = {"split": "kgfact/train", "limit": 2, "indomain": ["twohop"]}
    path = _config(tmp_path, tiny_model_dir, data=data, train={"max_steps": 2}, select="paper")
    with pytest.raises(
        UserError, match=r"field 'select': the paper's checkpoint rule .*paraphrase"
    ):
        load_run_config(path)
    path = _config(tmp_path, tiny_model_dir, select="best")
    with pytest.raises(UserError, match=r"field 'select': unknown rule; choose one of: auto, "):
        load_run_config(path)
    # without the paper rule the pipeline sets no validation_data, and no run config may set it
    config = load_run_config(_config(tmp_path, tiny_model_dir))
    from mixsd._stages.train import trainer_config

    assert trainer_config(config, config.trained[0], {}).validation_data is None
    path = _config(tmp_path, tiny_model_dir, train={"validation_data": "x.jsonl"})
    with pytest.raises(UserError, match=r"train\.validation_data': set by the pipeline"):
        load_run_config(path)


@pytest.mark.slow
def test_sweep_hands_the_chosen_runs_to_fisher_and_the_report(
    tmp_path: Path, tiny_model_dir: Path, scored: list[tuple[str, int]]
) -> None:
    """With a rollout method and the Fisher stage: the Fisher analysis compares the chosen
    rate's checkpoints of each method (not the other rates'), and the report is written."""
    prompts = tmp_path / "ref_prompts.jsonl"
    prompts.write_text("".join(f'{{"prompt": "Say {w}."}}\n' for w in ("hi", "yes", "no")))
    config = _config(
        tmp_path,
        tiny_model_dir,
        methods=["base", "sft", "mixsd@0.5"],
        rollout={"batch_size": 4, "max_new_tokens": 8, "max_retries": 0, "verifier": "any"},
        eval={
            "suites": ["indomain", "refloss"],
            "limit": 2,
            "indomain_max_new_tokens": 4,
            "ref_prompts_file": str(prompts),
            "ref_max_new_tokens": 8,
        },
        fisher={"max_length": 256},
        report=True,
    )
    import kgworld

    with kgworld.VERIFIERS.temporary("any", lambda reply, answer: True):  # a random model
        result = CliRunner().invoke(app, ["run", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    assert len(scored) == 4  # two methods x two rates
    compare = json.loads((run / "fisher" / "compare.json").read_text())
    compared = json.dumps(compare["checkpoints"])
    assert len(compare["checkpoints"]) == 2 * 2  # two methods x checkpoints 1 and 2
    assert "lr0.0001" not in compared
    for label in ("sft", "mixsd-a0.5"):
        assert json.loads((run / "train" / label / "selection.json").read_text())[
            "learning_rate"
        ] == pytest.approx(1e-3)
    assert "| mixsd-a0.5 |" in (run / "report.md").read_text()
