"""One training run, start to finish: check inputs, load, build the trainer, train, save.

The method registry maps a name to its config class, trainer class and kind of data, by name
only, so the CLI can list and check methods without importing torch.
Everything that can be wrong with the input is checked before the first optimizer step.

Output layout (``config.output_dir``)::

    manifest.json          method, resolved config, data hashes and target sources (stored
                           target_ids vs text), versions, status
    checkpoint-N/          every save_steps steps and at the end: HF model (or LoRA adapter)
                           folder + tokenizer + optimizer / scheduler / RNG state for resume
    model.safetensors ...  the final model (LoRA merged into the base), loadable with
                           AutoModelForCausalLM.from_pretrained, + tokenizer and chat template
    trainer_state.json     log_history: loss, learning_rate, val_accuracy (and with
                           validation_data heldout_val_accuracy) per checkpoint
    runs/                  tensorboard event files (report_to: tensorboard)
"""

from __future__ import annotations

import importlib
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixsd_base import Registry, file_sha256, package_versions, write_json
from mixsd_train._errors import TrainError

if TYPE_CHECKING:
    from transformers import Trainer, TrainerCallback

    from mixsd_train._config import TrainConfig

__all__ = ["METHODS", "Method", "resolve_method", "train"]


@dataclass(frozen=True)
class Method:
    config: str  # name of the config dataclass in mixsd_train._config
    trainer: str  # name of the Trainer subclass in mixsd_train._trainers
    data: str  # "records" (prompt/target/answer), "rollouts" (a mixsd rollout file)
    dataset: str  # which builder of mixsd_train._data makes the examples


METHODS: Registry[Method] = Registry(
    "method",
    {
        "sft": Method("SFTConfig", "NLLTrainer", "records", "nll_examples"),
        "mixsd": Method("MixSDConfig", "NLLTrainer", "rollouts", "nll_examples"),
        "mixsd-kl": Method("MixSDKLConfig", "MixSDKLTrainer", "rollouts", "kl_examples"),
        "opsd": Method("OPSDConfig", "OPSDTrainer", "records", "prompt_examples"),
        "opsd-nll": Method("OPSDNLLConfig", "OPSDNLLTrainer", "records", "prompt_examples"),
    },
)


def resolve_method(name: str) -> tuple[type[TrainConfig], type[Trainer], Method]:
    """``(config class, trainer class, Method)`` of a registered method name."""
    method = METHODS.get_or_fail(name)
    configs = importlib.import_module("mixsd_train._config")
    trainers = importlib.import_module("mixsd_train._trainers")
    return getattr(configs, method.config), getattr(trainers, method.trainer), method


def _load(config: TrainConfig) -> tuple[Any, Any]:
    from mixsd_core import load_model

    # fp32 master weights everywhere; on GPU the Trainer's bf16 autocast does the rest.
    return load_model(config.model, dtype="float32", device="cpu")


def _with_lora(model: Any, config: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model
    from transformers import set_seed

    set_seed(config.seed)  # the adapter's random init is part of the run
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def _checkpoints(out: Path) -> list[Path]:
    return sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.rpartition("-")[2] or 0))


def train(
    method_name: str,
    config: TrainConfig,
    *,
    resume: bool = False,
    model: Any = None,
    tokenizer: Any = None,
    callbacks: Sequence[TrainerCallback] = (),
    run: bool = True,
) -> Trainer:
    """Train ``config.model`` on ``config.data`` with ``method_name``; returns the Trainer.

    ``model``/``tokenizer`` skip loading ``config.model``. ``resume`` continues from the latest
    checkpoint in ``config.output_dir`` (a fresh start when there is none). ``run=False`` builds
    everything and returns the Trainer untrained (for tests and benchmarks).
    """
    from mixsd_core import pad_token_id
    from mixsd_train import _data
    from mixsd_train._validation import ValidationCallback

    config_cls, trainer_cls, method = resolve_method(method_name)
    if type(config) is not config_cls:
        raise TrainError(
            f"method {method_name!r} needs a {config_cls.__name__}, got {type(config).__name__}"
        )
    if not config.data:
        raise TrainError("no training data: pass --data FILE (or data: in the config)")
    if not config.output_dir:
        raise TrainError("no output folder: pass --out runs/NAME")
    out = Path(config.output_dir)
    existing = _checkpoints(out) if out.is_dir() else []
    if existing and not resume:
        raise TrainError(
            f"{out.absolute()} already holds checkpoints; pass --resume or pick another --out"
        )

    # Records first: a malformed file fails before the model is loaded.
    records = _data.read_records_file(config.data)
    eval_records = (_data.read_records_file(config.eval_data) if config.eval_data else records)[
        : config.eval_limit
    ]
    heldout_limit = (
        config.eval_limit if config.validation_limit is None else config.validation_limit
    )
    heldout_records = (
        _data.read_records_file(config.validation_data)[:heldout_limit]
        if config.validation_data
        else []
    )
    if method.data == "rollouts":
        _data.require_rollout_fields(records, config.data)
    if model is None or tokenizer is None:
        model, tokenizer = _load(config)
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is None:
        raise TrainError("the tokenizer has neither a pad nor an EOS token")
    if method.data == "rollouts":
        records = _data.read_rollouts_file(config.data, tokenizer)
    if method.dataset == "prompt_examples":  # on-policy: prompts only, targets are sampled
        dataset = _data.prompt_examples(records, tokenizer, config.prompt_style)
    else:
        dataset = getattr(_data, method.dataset)(records, tokenizer, config.max_length)
    if config.use_lora:
        model = _with_lora(model, config)

    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "stage": "train",
        "method": method_name,
        "status": "running",
        "model": {"spec": config.model, "name_or_path": str(getattr(model, "name_or_path", ""))},
        "data": {
            "path": str(Path(config.data).absolute()),
            "sha256": file_sha256(config.data),
            "examples": len(dataset),
        },
        "eval_data": None
        if not config.eval_data
        else {
            "path": str(Path(config.eval_data).absolute()),
            "sha256": file_sha256(config.eval_data),
        },
        "eval_records": len(eval_records),
        "validation_data": None
        if not config.validation_data
        else {
            "path": str(Path(config.validation_data).absolute()),
            "sha256": file_sha256(config.validation_data),
        },
        "validation_records": len(heldout_records),
        "config": config.to_dict(),
        "versions": {
            "python": platform.python_version(),
            **package_versions(
                "mixsd-base",
                "mixsd-train",
                "mixsd-core",
                "kgworld",
                "torch",
                "transformers",
                "peft",
            ),
        },
    }
    if method.dataset != "prompt_examples":
        # How many examples train on a rollout's stored target_ids, how many on re-tokenised text.
        manifest["data"]["target_sources"] = _data.target_sources(dataset)
    # Under torchrun / accelerate launch every process runs this function; one writes files.
    # (process_index sets up the process group, as the Trainer would.)
    main_process = config.process_index == 0
    if main_process:
        write_json(out / "manifest.json", manifest, default=str)

    trainer = trainer_cls(
        model,
        config,
        train_dataset=dataset,
        processing_class=tokenizer,
        data_collator=_data.PadCollator(pad_token_id(tokenizer)),
        callbacks=list(callbacks),
    )
    if eval_records or heldout_records:
        trainer.add_callback(
            ValidationCallback(
                tokenizer,
                eval_records,
                max_new_tokens=config.eval_max_new_tokens,
                batch_size=max(config.per_device_train_batch_size, 8),
                verifier=config.eval_verifier,
                log=trainer.log,
                heldout=heldout_records,
                # FSDP shards the weights: each decoding step is collective, so every process
                # decodes every record; otherwise each decodes its share and the counts add up.
                split=not trainer.is_fsdp_enabled,
            )
        )
    if not run:
        return trainer

    # The Trainer writes a checkpoint's trainer_state.json last: a folder without it is a save
    # cut short (a killed run), which the Trainer would refuse to resume from, every time.
    # Resume from the last whole one; the cut step is trained and saved again over it.
    whole = [c for c in existing if (c / "trainer_state.json").is_file()]
    result = trainer.train(resume_from_checkpoint=str(whole[-1]) if resume and whole else None)
    _save_final(trainer, tokenizer, out, lora=config.use_lora)
    trainer.save_state()
    manifest.update(
        status="complete", metrics=result.metrics, global_step=trainer.state.global_step
    )
    if main_process:
        write_json(out / "manifest.json", manifest, default=str)
    return trainer


def _save_final(trainer: Trainer, tokenizer: Any, out: Path, *, lora: bool) -> None:
    """The final model as a plain HF folder at the run's root (LoRA merged into the base)."""
    if not lora:
        trainer.save_model(str(out))
        return
    if trainer.is_world_process_zero():
        merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        merged.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
