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
    if method in ("mixsd-kl", "opsd", "opsd-nll"):
        assert trainer.teacher is not None
        teacher = trainer.teacher.state_dict()  # frozen: still the base weights after 3 steps
        assert all(torch.equal(before[k], teacher[k].cpu()) for k in before)
        # a copy of its own: no tensor shared with the student that was trained
        student = {p.data_ptr() for p in trainer.model.parameters()}
        assert not student & {p.data_ptr() for p in trainer.teacher.parameters()}
        assert not any(p.requires_grad for p in trainer.teacher.parameters())


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


@pytest.mark.parametrize("style", ["clear", "paper"])
def test_opsd_teacher_prompt_is_the_rollouts_expert_prompt(
    style: str, make_config: Callable[..., Any], records_file: Path
) -> None:
    """The teacher sees mixsd_core's expert prompt in the configured wording (the rollouts'),
    token for token; the student sees the naive prompt."""
    from mixsd_core import PromptConfig, render_prompts

    trainer = train("opsd", make_config("opsd", prompt_style=style), run=False)
    tokenizer = trainer.processing_class
    records = read_records_file(records_file)
    examples = trainer.train_dataset.examples
    assert len(examples) == len(records)
    other = "paper" if style == "clear" else "clear"
    for record, example in zip(records, examples, strict=True):
        naive, expert = render_prompts(tokenizer, record, PromptConfig(style))
        assert tokenizer.decode(example["expert_ids"]) == expert
        assert expert != render_prompts(tokenizer, record, PromptConfig(other))[1]
        assert example["expert_ids"] == tokenizer(expert, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(example["naive_ids"]) == naive


def test_opsd_draws_num_generations_rollouts_per_query(
    make_config: Callable[..., Any], records_file: Path
) -> None:
    """n rollouts of each prompt, sampled (T = 1): each row is its prompt plus a response, the
    teacher row the expert prompt plus the same response."""
    trainer = train("opsd", make_config("opsd", num_generations=3, max_new_tokens=6), run=False)
    tokenizer = trainer.processing_class
    examples = prompt_examples(read_records_file(records_file)[:2], tokenizer, "clear").examples
    batch = trainer.sample_batch(trainer.model, PadCollator(tokenizer.eos_token_id)(examples))
    assert batch["input_ids"].shape[0] == 2 * 3
    for row in range(6):
        example = examples[row // 3]  # rows grouped by prompt, n each
        naive, expert = example["naive_ids"], example["expert_ids"]
        student = batch["input_ids"][row][batch["attention_mask"][row] == 1].tolist()
        teacher = batch["teacher_input_ids"][row][batch["teacher_attention_mask"][row] == 1]
        assert student[: len(naive)] == naive
        assert teacher.tolist() == expert + student[len(naive) :]
    responses = {tuple(batch["input_ids"][row].tolist()) for row in range(3)}
    assert len(responses) > 1  # sampled, not one greedy reply repeated
