"""Whole runs: output layout, checkpoints and validation, kill-and-resume, input errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, TrainerCallback

from mixsd_base import UserError
from mixsd_train import TrainError, train


class StopAt(TrainerCallback):
    """Ends training after ``step`` (its checkpoint written): a kill right after a save."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            control.should_training_stop = True


def test_layout_checkpoints_and_validation(
    make_config: Callable[..., Any],
    make_records: Callable[..., list[dict[str, Any]]],
    write_jsonl: Callable[..., Path],
    tmp_path: Path,
) -> None:
    paraphrase = write_jsonl(tmp_path / "paraphrase.jsonl", make_records(4, "paraphrase"))
    config = make_config(
        "sft",
        max_steps=5,
        save_steps=2,
        eval_data=str(paraphrase),
        eval_limit=3,
        report_to="tensorboard",
    )
    train("sft", config)
    out = Path(config.output_dir)
    assert list(out.glob("runs/*/events.out.tfevents.*"))  # tensorboard
    assert sorted(p.name for p in out.glob("checkpoint-*")) == [
        "checkpoint-2",
        "checkpoint-4",
        "checkpoint-5",  # the end of training is saved too
    ]
    assert (out / "checkpoint-2" / "model.safetensors").is_file()
    # the validation accuracy of a checkpoint is in that checkpoint's own trainer_state
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    vals = [(e["step"], e["val_n"]) for e in state["log_history"] if "val_accuracy" in e]
    assert vals == [(2, 3.0), (4, 3.0)]
    assert not any("heldout_val_accuracy" in e for e in state["log_history"])  # none asked for
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["method"] == "sft"
    assert manifest["config"]["learning_rate"] == 1e-3 and len(manifest["data"]["sha256"]) == 64
    final = AutoModelForCausalLM.from_pretrained(out)  # the final model is a plain HF folder
    assert final.config.vocab_size > 0 and (out / "chat_template.jinja").is_file()
    with pytest.raises(TrainError, match="already holds checkpoints"):
        train("sft", config)


def test_heldout_validation_curve_beside_training_accuracy(
    make_config: Callable[..., Any],
    make_records: Callable[..., list[dict[str, Any]]],
    write_jsonl: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """validation_data: each checkpoint also logs heldout_val_accuracy on the first
    validation_limit held-out records (default eval_limit), beside the training accuracy."""
    heldout = write_jsonl(tmp_path / "paraphrase.jsonl", make_records(5, "paraphrase"))
    config = make_config(
        "sft", max_steps=2, save_steps=1, eval_limit=3, validation_data=str(heldout)
    )
    train("sft", config)
    out = Path(config.output_dir)
    state = json.loads((out / "trainer_state.json").read_text())
    points = [e for e in state["log_history"] if "val_accuracy" in e]
    assert [(e["step"], e["val_n"], e["heldout_val_n"]) for e in points] == [
        (1, 3.0, 3.0),
        (2, 3.0, 3.0),
    ]
    assert all(0 <= e["heldout_val_accuracy"] <= 1 for e in points)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["validation_data"]["path"] == str(heldout.absolute())
    assert manifest["validation_records"] == 3

    config = make_config(
        "sft",
        output_dir=str(tmp_path / "limited"),
        max_steps=1,
        eval_limit=0,
        validation_data=str(heldout),
        validation_limit=4,
    )
    train("sft", config)  # the held-out curve alone (no training accuracy), on 4 records
    state = json.loads((tmp_path / "limited" / "trainer_state.json").read_text())
    logged = [e for e in state["log_history"] if "heldout_val_n" in e]
    assert [(e["step"], e["heldout_val_n"], "val_accuracy" in e) for e in logged] == [
        (1, 4.0, False)
    ]


@pytest.mark.parametrize("method", ["sft", "opsd"])
def test_kill_and_resume_reproduces_the_uninterrupted_run(
    method: str, make_config: Callable[..., Any], tmp_path: Path
) -> None:
    steps = {"max_steps": 4, "save_steps": 2, "eval_limit": 0}
    whole = make_config(method, output_dir=str(tmp_path / "whole"), **steps)
    train(method, whole)
    cut = make_config(method, output_dir=str(tmp_path / "cut"), **steps)
    train(method, cut, callbacks=[StopAt(2)])
    assert not (tmp_path / "cut" / "checkpoint-4").exists()
    train(method, cut, resume=True)
    a = load_file(tmp_path / "whole" / "checkpoint-4" / "model.safetensors")
    b = load_file(tmp_path / "cut" / "checkpoint-4" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_lora_run_saves_adapters_and_a_merged_model(
    make_config: Callable[..., Any], tmp_path: Path
) -> None:
    config = make_config("sft", use_lora=True, lora_r=4, eval_limit=0, max_steps=2)
    train("sft", config)
    out = Path(config.output_dir)
    assert (out / "checkpoint-2" / "adapter_model.safetensors").is_file()
    merged = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in name for name in merged.state_dict())


def test_input_errors(
    make_config: Callable[..., Any], records_file: Path, tmp_path: Path, tiny_model_dir: Path
) -> None:
    with pytest.raises(UserError, match=r"unknown method 'sfd'.*did you mean 'sft'"):
        train("sfd", make_config("sft"))
    with pytest.raises(TrainError, match="needs a MixSDConfig"):
        train("mixsd", make_config("sft"))
    with pytest.raises(TrainError, match="not a rollout file"):
        train("mixsd", make_config("mixsd", data=str(records_file)))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(UserError, match="no records"):
        train("sft", make_config("sft", data=str(empty)))
    with pytest.raises(UserError, match="does not exist"):
        train("sft", make_config("sft", model=str(tmp_path / "nope" / "model")))
