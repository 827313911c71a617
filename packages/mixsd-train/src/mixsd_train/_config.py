"""Training configs, TRL style: one dataclass per method on top of ``TrainingArguments``.

``TrainConfig`` holds what every method shares and sets the paper's defaults (global batch 16,
20 warmup steps then a constant learning rate, AdamW with betas (0.9, 0.95) and weight decay 0.01,
gradient clipping 1.0, a checkpoint every 20 steps, bf16 on GPU / fp32 on CPU). Each method adds
only its own fields. ``mixsd_base.load_config`` builds one from defaults < YAML file <
``key=value`` overrides; an unknown key or a bad value is an error naming the file, line and field.

The step counts that ``TrainingArguments`` types ``float`` (an int counts steps, a float below 1 a
fraction of training) are typed ``int | float`` here, so a whole number stays an int, as written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainingArguments

from mixsd_base import check_fields, option
from mixsd_train._errors import TrainError
from mixsd_train._fields import model_field

__all__ = [
    "MixSDConfig",
    "MixSDKLConfig",
    "OPSDConfig",
    "OPSDNLLConfig",
    "SFTConfig",
    "TrainConfig",
]


@dataclass
class TrainConfig(TrainingArguments):
    """Fields shared by every method; the paper's schedule as defaults."""

    # ---- what to train on (CLI flags --model / --data / --out fill these)
    model: str = model_field()
    data: str = field(
        default="",
        metadata={
            "help": "Training JSONL: records (sft, opsd*) or a rollout file (mixsd*).",
            "pipeline": True,  # mixsd run fills it (its records or rollouts)
        },
    )
    max_length: int = option(
        1024, "Longest prompt + target in tokens; longer targets are cut on the right.", min=2
    )
    prompt_style: str = option(
        "clear",
        "Expert prompt wording for teacher-based methods: 'clear' or 'paper'.",
        choices=("clear", "paper"),
    )
    global_batch_size: int | None = field(
        default=16,
        metadata={
            "help": "Examples per optimizer step over all devices; sets gradient_accumulation_steps "
            "= global / (per_device_train_batch_size x devices). None: use gradient_accumulation_steps."
        },
    )
    # ---- LoRA (peft); off = full fine-tuning, as in every reported paper run
    use_lora: bool = option(False, "Train a LoRA adapter instead of all weights.")
    lora_r: int = option(8, "LoRA rank.")
    lora_alpha: int = option(32, "LoRA scaling alpha.")
    lora_dropout: float = option(0.05, "Dropout on the LoRA path.", interval="[0, 1)")
    lora_target_modules: list[str] | str = field(
        default="all-linear",
        metadata={
            "help": "Modules that get adapters: 'all-linear' or a list such as [q_proj, v_proj]."
        },
    )
    # ---- in-domain validation at every checkpoint
    eval_data: str | None = field(
        default=None,
        metadata={
            "help": "Records JSONL for checkpoint accuracy (e.g. the paraphrase split). None: the training records.",
            "pipeline": True,  # mixsd run: every training fact, kept by the rollouts or not
        },
    )
    eval_limit: int = option(32, "Validate on the first N records (0 = no validation).", min=0)
    eval_max_new_tokens: int = option(64, "Greedy tokens per validation answer.", min=1)
    eval_verifier: str = option("auto", "kgworld verifier name, or 'auto' (by task type).")
    # ---- held-out validation at every checkpoint (the paper's checkpoint rule reads it)
    validation_data: str | None = field(
        default=None,
        metadata={
            "help": "Held-out records JSONL (e.g. the paraphrase split) validated at every "
            "checkpoint as heldout_val_accuracy, the validation curve of the 'paper' checkpoint "
            "rule; same decoding and verifier as eval_data. None: no held-out validation.",
            "pipeline": True,  # mixsd run: the validation split, when select: paper
        },
    )
    validation_limit: int | None = option(
        None, "Validate on the first N held-out records (0 = none). None: eval_limit.", min=0
    )
    # ---- TrainingArguments defaults changed to the paper's
    learning_rate: float = field(
        default=1e-5,
        metadata={
            "help": "Peak AdamW learning rate (paper: 1e-5 full FT at 1.7B-8B; SmolLM2-135M on CPU needs ~5e-5)."
        },
    )
    lr_scheduler_type: str = field(
        default="constant_with_warmup", metadata={"help": "Warmup then constant, as in the paper."}
    )
    warmup_steps: int | float = field(default=20, metadata={"help": "Linear warmup steps."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    adam_beta2: float = field(default=0.95, metadata={"help": "AdamW beta2."})
    per_device_train_batch_size: int = field(
        default=4, metadata={"help": "Examples per device per micro-batch."}
    )
    num_train_epochs: float = field(
        default=20.0,
        metadata={"help": "Epochs (ignored when max_steps > 0); the paper trains KGFact 20."},
    )
    save_steps: int | float = field(
        default=20, metadata={"help": "Checkpoint (and validate) every N optimizer steps."}
    )
    logging_steps: int | float = field(default=5, metadata={"help": "Log the loss every N steps."})
    bf16: bool | None = field(  # type: ignore[assignment]  # None = auto, resolved below
        default=None,
        metadata={"help": "bf16 autocast; None = on with a bf16-capable GPU, off on CPU."},
    )
    report_to: str | list[str] | None = field(
        default="tensorboard", metadata={"help": "'tensorboard', 'none', or other HF integrations."}
    )
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep all collated fields (the trainers need them)."}
    )

    def __post_init__(self) -> None:
        import torch

        if self.bf16 is None:
            self.bf16 = bool(
                not self.use_cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
            )
        if not torch.cuda.is_available():
            self.dataloader_pin_memory = False  # pinning needs an accelerator (else a warning)
        # WORLD_SIZE is set by torchrun / accelerate launch; reading it has no side effects.
        devices = int(os.environ.get("WORLD_SIZE", "1"))
        if devices > 1 and not torch.cuda.is_available():
            if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
                # accelerate shards only multi-GPU runs: on CPU it would silently train DDP.
                raise TrainError(
                    "FSDP needs GPUs (accelerate enables it for multi-GPU runs only); "
                    "on CPU launch with configs/accelerate/ddp.yaml or torchrun"
                )
            # Several processes and no GPU: accelerate makes the gloo process group (and the
            # Trainer shards the data and all-reduces) only for a run marked CPU; unmarked, it
            # finds no accelerator, runs each process alone and each trains on all the data.
            self.use_cpu = True
        if self.global_batch_size is not None:
            per_step = self.per_device_train_batch_size * devices
            if self.global_batch_size < 1 or self.global_batch_size % per_step:
                raise TrainError(
                    f"{self.global_batch_size} is not a multiple of "
                    f"per_device_train_batch_size x devices = {per_step}",
                    field="global_batch_size",
                )
            self.gradient_accumulation_steps = self.global_batch_size // per_step
        super().__post_init__()
        check_fields(self, error=TrainError)  # this class's and each method's own fields
        for name in ("lora_r", "lora_alpha"):
            if self.use_lora and getattr(self, name) < 1:
                raise TrainError(f"must be >= 1, got {getattr(self, name)}", field=name)


@dataclass
class SFTConfig(TrainConfig):
    """``sft``: next-token NLL on each record's canonical ``target`` (assistant tokens only)."""


@dataclass
class MixSDConfig(SFTConfig):
    """``mixsd``: the same NLL on the verified mixed targets of a rollout file."""


def _top_k_field() -> Any:
    return option(64, "Teacher tokens kept per position (k = vocab: exact KL).", min=1)


def _kl_renorm_student_field() -> Any:
    return option(
        True,
        "Renormalise the student over the teacher's top-k (True) or use its full-vocab log-probs there.",
    )


@dataclass
class MixSDKLConfig(MixSDConfig):
    """``mixsd-kl``: top-k forward KL to the expert-prompted frozen base along the mixed target."""

    top_k: int = _top_k_field()
    kl_renorm_student: bool = _kl_renorm_student_field()


@dataclass
class OPSDConfig(TrainConfig):
    """``opsd``: on-policy self-distillation; the student samples, the expert-prompted base scores."""

    num_generations: int = option(8, "Student rollouts per prompt and step.", min=1)
    temperature: float = option(1.0, "Sampling temperature of the rollouts (0 = greedy).", min=0)
    top_p: float = option(1.0, "Nucleus mass of the rollouts.", interval="(0, 1]")
    max_new_tokens: int = option(128, "Longest student rollout, in tokens.", min=1)
    top_k: int = _top_k_field()
    kl_renorm_student: bool = _kl_renorm_student_field()
    num_train_epochs: float = option(
        2.0, "Epochs over the prompts (the authors' OPSD config: 2; the paper gives none)."
    )


@dataclass
class OPSDNLLConfig(OPSDConfig):
    """``opsd-nll``: one greedy student rollout per prompt; NLL of the teacher's top-1 token."""

    num_generations: int = option(1, "Student rollouts per prompt and step.", min=1)
    temperature: float = option(0.0, "0 = greedy rollouts (the method).", min=0)
