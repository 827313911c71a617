"""Each trainer on the tiny model: a few steps run, losses are finite, weights move; the frozen
teacher (copy or LoRA with the adapter off); OPSD's loss is zero when teacher = student."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM

from mixsd_train import METHODS, train
from mixsd_train._data import PadCollator, prompt_examples, read_records_file


def losses(trainer: Any) -> list[float]:
    return [e["loss"] for e in trainer.state.log_history if "loss" in e]


def base_weights(folder: Path) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(folder).state_dict()


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_trains(
    method: str, make_config: Callable[..., Any], rollout_file: Path, tiny_model_dir: Path
) -> None:
    data = {"data": str(rollout_file)} if method.startswith("mixsd") else {}
    trainer = train(method, make_config(method, eval_limit=0, **data))
    seen = losses(trainer)
    assert len(seen) == 3 and all(math.isfinite(x) for x in seen)
    before = base_weights(tiny_model_dir)
    after = trainer.model.state_dict()
    assert any(not torch.equal(before[k], after[k].cpu()) for k in before)
    if method in ("mixsd-kl", "opsd"):
        assert trainer.teacher is not None
        teacher = trainer.teacher.state_dict()  # frozen: still the base weights
        assert all(torch.equal(before[k], teacher[k].cpu()) for k in before)


def test_lora_teacher_is_the_base_with_the_adapter_off(
    make_config: Callable[..., Any], rollout_file: Path, tiny_lm: tuple[Any, Any]
) -> None:
    config = make_config("mixsd-kl", data=str(rollout_file), use_lora=True, lora_r=4)
    trainer = train("mixsd-kl", config, run=False)
    assert trainer.teacher is None  # no second copy of the weights
    model = trainer.model
    with torch.no_grad():  # a trained-looking adapter: B = 0 at init would hide the test
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    base, _ = tiny_lm  # the base weights, eval mode
    with torch.no_grad(), trainer.teacher_model(model) as teacher:
        assert teacher is model
        teacher_logits = teacher(input_ids=ids).logits
    with torch.no_grad():
        torch.testing.assert_close(teacher_logits, base(input_ids=ids).logits)
        assert not torch.allclose(model(input_ids=ids).logits, teacher_logits)


def test_opsd_loss_is_zero_when_teacher_equals_student(
    make_config: Callable[..., Any], records_file: Path
) -> None:
    trainer = train("opsd", make_config("opsd", max_new_tokens=8), run=False)
    tokenizer = trainer.processing_class
    examples = prompt_examples(read_records_file(records_file)[:2], tokenizer, "clear").examples
    for example in examples:
        example["expert_ids"] = list(example["naive_ids"])  # expert prompt = naive prompt
    inputs = PadCollator(tokenizer.eos_token_id)(examples)
    batch = trainer.sample_batch(trainer.model, inputs)
    assert batch["input_ids"].shape[0] == 2 * 2  # two rollouts per prompt
    assert torch.equal(batch["input_ids"], batch["teacher_input_ids"])
    # the rollouts follow their prompt; labels cover the sampled tokens only
    prompt_len = len(examples[0]["naive_ids"])
    assert batch["input_ids"][0, :prompt_len].tolist() == examples[0]["naive_ids"]
    assert (batch["labels"][0, :prompt_len] == -100).all()
    assert (batch["labels"][0, prompt_len:] != -100).any()
    loss = trainer.compute_loss(trainer.model, batch)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    # with a different (expert) prompt the teacher disagrees
    inputs = PadCollator(tokenizer.eos_token_id)(
        prompt_examples(read_records_file(records_file)[:2], tokenizer, "clear").examples
    )
    assert trainer.compute_loss(trainer.model, trainer.sample_batch(trainer.model, inputs)) > 0


@pytest.mark.slow
@pytest.mark.parametrize("method", list(METHODS))
def test_loss_decreases(method: str, make_config: Callable[..., Any], rollout_file: Path) -> None:
    data = {"data": str(rollout_file)} if method.startswith("mixsd") else {}
    config = make_config(method, max_steps=12, eval_limit=0, save_steps=100, **data)
    seen = losses(train(method, config))
    assert sum(seen[-3:]) < sum(seen[:3]), seen
