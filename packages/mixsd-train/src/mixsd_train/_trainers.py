"""The five methods as ``transformers.Trainer`` subclasses that override only the loss (and, for
the on-policy methods, ``training_step``, which samples the student's rollouts first).

* ``NLLTrainer`` (sft, mixsd): NLL of the target tokens.
* ``MixSDKLTrainer`` (mixsd-kl): top-k forward KL to the expert-prompted frozen base model,
  position by position along the mixed target.
* ``OPSDTrainer`` (opsd): the current student samples ``num_generations`` rollouts per naive
  prompt; the same top-k forward KL on the student's own tokens.
* ``OPSDNLLTrainer`` (opsd-nll): one greedy rollout; NLL of the teacher's top-1 token.

Everything else (optimizer, schedule, accumulation, clipping, checkpoints, resume, several
devices through accelerate / torchrun) is the stock Trainer.

Loss scale. Each trainer's ``summed_loss`` returns a micro-batch's summed token loss and token
count; the one ``compute_loss`` (in ``_Base``) scales it. Dataset-labelled methods divide the summed token loss by ``num_items_in_batch``, the
target-token count of the whole accumulated (and, with ``average_tokens_across_devices``,
all-device) batch: a token-level mean over the optimizer step, as TRL does. On-policy methods
cannot know the token count of rollouts not yet sampled, so they average over each micro-batch's
tokens and let the Trainer divide by the accumulation steps.

The frozen teacher is a second copy of the base weights for full fine-tuning, or, for a LoRA
model, the same module with its adapter disabled (no second copy in memory).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from transformers import Trainer

from mixsd_train._config import MixSDKLConfig, OPSDConfig, TrainConfig
from mixsd_train._data import IGNORE_INDEX, pad_rows
from mixsd_train._errors import TrainError
from mixsd_train._losses import masked_nll, teacher_top1_nll, topk_forward_kl

__all__ = ["MixSDKLTrainer", "NLLTrainer", "OPSDNLLTrainer", "OPSDTrainer"]


def _is_peft(model: nn.Module) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # peft is a dependency, but the full-FT path must not need it
        return False
    return isinstance(model, PeftModel)


class _Base(Trainer):
    """Shared constructor (with the frozen teacher of the distilling methods) and loss reduction."""

    args: TrainConfig
    uses_teacher = False  # the distilling trainers compare the student with the frozen base

    def __init__(
        self,
        model: nn.Module,
        args: TrainConfig,
        *,
        train_dataset: Any,
        processing_class: Any,
        data_collator: Any = None,
        callbacks: list[Any] | None = None,
    ) -> None:
        # Full fine-tuning: copy the base weights before the first update touches them. A LoRA
        # model is its own teacher with the adapter switched off (no copy).
        teacher = copy.deepcopy(model) if self.uses_teacher and not _is_peft(model) else None
        super().__init__(
            model,
            args,
            train_dataset=train_dataset,
            processing_class=processing_class,
            data_collator=data_collator,
            callbacks=callbacks,
        )
        # Our compute_loss normalises by num_items_in_batch itself (it never reaches the model),
        # so have the Trainer always count it, whatever the model's forward signature.
        self.model_accepts_loss_kwargs = True
        self.teacher = teacher
        if teacher is not None:
            teacher.requires_grad_(False).eval()
            # Inference only: under bf16 training the teacher runs in bf16 anyway; halve its memory.
            dtype = torch.bfloat16 if args.bf16 else None
            teacher.to(device=args.device, dtype=dtype)

    def summed_loss(
        self, model: nn.Module, inputs: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """``(summed token loss, token count, model outputs or None)`` of one micro-batch."""
        raise NotImplementedError

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        loss_sum, count, outputs = self.summed_loss(model, inputs)
        loss = self._reduce(loss_sum, count, num_items_in_batch)
        return (loss, outputs) if return_outputs else loss

    def _reduce(
        self, loss_sum: torch.Tensor, count: torch.Tensor, num_items_in_batch: Any
    ) -> torch.Tensor:
        if not self.loss_is_scaled_for_ga:
            return loss_sum / count.clamp(min=1)
        if num_items_in_batch is None:  # called outside training_step: mean of this micro-batch
            return loss_sum / count.clamp(min=1) / self.args.gradient_accumulation_steps
        loss = loss_sum / num_items_in_batch
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            # The count is over all devices and DDP averages gradients: undo that average.
            loss = loss * self.accelerator.num_processes
        return loss


class NLLTrainer(_Base):
    """sft and mixsd: next-token NLL on the target tokens (labels -100 elsewhere)."""

    loss_is_scaled_for_ga = True

    def summed_loss(
        self, model: nn.Module, inputs: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor, Any]:
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        targets = inputs["labels"][:, 1:]
        mask = targets != IGNORE_INDEX
        return masked_nll(outputs.logits[:, :-1], targets, mask), mask.sum(), outputs


class _TeacherBase(_Base):
    """A frozen teacher beside the student; ``distill`` compares their aligned target logits."""

    uses_teacher = True

    @contextmanager
    def teacher_model(self, model: nn.Module) -> Iterator[nn.Module]:
        """The frozen base model: the copy, or the LoRA model with its adapter switched off."""
        if self.teacher is not None:
            yield self.teacher
            return
        unwrapped = self.accelerator.unwrap_model(model)
        with unwrapped.disable_adapter():
            yield unwrapped

    def aligned_logits(
        self, model: nn.Module, inputs: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Student and teacher logits at the target tokens, ``[N, V]`` each, row for row.

        Both rows of an example hold the same target ids after prompts of different lengths;
        selecting each side's next-token logits by its own label mask yields the target
        positions in the same order (row-major, left to right), so row n of both is the
        prediction of the same target token.
        """
        student = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        with torch.no_grad(), self.teacher_model(model) as teacher:
            teacher_logits = teacher(
                input_ids=inputs["teacher_input_ids"],
                attention_mask=inputs["teacher_attention_mask"],
            ).logits
        s_mask = inputs["labels"][:, 1:] != IGNORE_INDEX
        t_mask = inputs["teacher_labels"][:, 1:] != IGNORE_INDEX
        return student.logits[:, :-1][s_mask], teacher_logits[:, :-1][t_mask]

    def distill(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """Summed top-k forward KL over the aligned rows."""
        args = self.args
        assert isinstance(args, MixSDKLConfig | OPSDConfig)
        everywhere = torch.ones(student.shape[0], dtype=torch.bool, device=student.device)
        return topk_forward_kl(
            student, teacher, everywhere, args.top_k, renorm_student=args.kl_renorm_student
        )

    def summed_loss(
        self, model: nn.Module, inputs: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor, Any]:
        student, teacher = self.aligned_logits(model, inputs)
        count = torch.tensor(student.shape[0], device=student.device)
        return self.distill(student, teacher), count, None


class MixSDKLTrainer(_TeacherBase):
    """mixsd-kl: the student (naive prompt + mixed target) matches the expert-prompted base."""

    loss_is_scaled_for_ga = True


class OPSDTrainer(_TeacherBase):
    """opsd: sample from the current student, then distil the expert-prompted base on those tokens."""

    loss_is_scaled_for_ga = False  # per-micro-batch token mean; the Trainer divides by accumulation

    def __init__(self, model: nn.Module, args: TrainConfig, **kwargs: Any) -> None:
        super().__init__(model, args, **kwargs)
        if self.is_fsdp_enabled:
            # Each process samples its own prompts, for as many steps as its longest rollout;
            # with sharded weights every forward pass is a collective, so they would deadlock.
            raise TrainError(
                "opsd and opsd-nll sample on each process separately and cannot run under FSDP; "
                "use DDP (torchrun, or accelerate launch without FSDP), with LoRA if the model "
                "does not fit one device"
            )

    def training_step(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        return super().training_step(model, self.sample_batch(model, inputs), num_items_in_batch)

    @torch.no_grad()
    def sample_batch(self, model: nn.Module, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Rollouts of the student from the naive prompts -> padded student and teacher rows."""
        from mixsd_core import pad_token_id, sample_rollout, stable_seed, stop_token_ids

        args = self.args
        assert isinstance(args, OPSDConfig)
        student = self.accelerator.unwrap_model(model)
        tokenizer = self.processing_class
        was_training = student.training
        student.eval()
        try:
            with self.autocast_smart_context_manager():
                samples = sample_rollout(
                    student,
                    tokenizer,
                    inputs["naive_ids"],
                    n=args.num_generations,
                    max_new_tokens=args.max_new_tokens,
                    eos_token_ids=stop_token_ids(student, tokenizer),
                    # A function of (seed, step) only: a resumed run draws the same samples.
                    # Each sample has its own stream by example id, so the rank is not needed:
                    # 2 processes draw what 1 draws for the same prompts. (The last part was the
                    # rank; 0 keeps one process's samples as they were.)
                    seed=stable_seed("opsd", args.seed, self.state.global_step, 0),
                    example_ids=inputs["id"],
                    temperature=args.temperature,
                    top_p=args.top_p,
                )
        finally:
            student.train(was_training)
        rows: dict[str, list[Any]] = {"s": [], "s_len": [], "t": [], "t_len": []}
        for naive, expert, responses in zip(
            inputs["naive_ids"], inputs["expert_ids"], samples, strict=True
        ):
            for response in responses:
                rows["s"].append(naive + response)
                rows["s_len"].append(len(naive))
                rows["t"].append(expert + response)
                rows["t_len"].append(len(expert))
        pad = pad_token_id(tokenizer)
        batch = pad_rows(rows["s"], rows["s_len"], pad)
        teacher = pad_rows(rows["t"], rows["t_len"], pad)
        batch.update({f"teacher_{k}": v for k, v in teacher.items()})
        return batch


class OPSDNLLTrainer(OPSDTrainer):
    """opsd-nll: NLL of the teacher's top-1 token at each position of the student's rollout."""

    def distill(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        everywhere = torch.ones(student.shape[0], dtype=torch.bool, device=student.device)
        return teacher_top1_nll(student, teacher, everywhere)
