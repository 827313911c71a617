"""The stage sections of a run config (``rollout:``, ``nll:``, ``eval:``, ``fisher:``, ``train:``
and each method's ``train:``): checked against the stage's own config class before any work, and
merged into each trained method's options."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from mixsd._run_config import MethodSpec, RunConfig, RunError

__all__ = ["check_sections", "config_class", "train_config_file", "train_overrides"]


def _stage_classes() -> dict[str, list[type]]:
    from fishertools import CompareConfig, FisherConfig
    from forgetbench import EvalConfig
    from mixsd_core import NLLConfig, RolloutConfig

    return {
        "rollout": [RolloutConfig],
        "nll": [NLLConfig],
        "eval": [EvalConfig],
        "fisher": [FisherConfig, CompareConfig],
    }


# Keys the pipeline sets itself in each stage's config; the user may not set them.
_OWNED = {
    "rollout": {"model", "data", "out", "alpha", "seed"},
    "nll": {"model", "data", "out", "compare"},
    "eval": {"model", "out", "world", "base", "base_model", "cache_dir", "seed"},
    "fisher": {"forgetting", "loss_data", "plot"},
    "train": {
        "model",
        "data",
        "output_dir",
        "eval_data",
        "seed",
        "disable_tqdm",
        "edits",
        "overwrite",
    },
}


def check_sections(config: RunConfig) -> None:
    """Fail before any work on a key no stage knows (file:line: field)."""
    from mixsd_train import load_config

    for section, classes in _stage_classes().items():
        values = getattr(config, section) or {}
        known = {f.name for cls in classes for f in fields(cls)} | {"samples"}
        for key in values:
            if key not in known:
                raise RunError(f"{config.where(section, key)}: unknown {section} option")
            if key in _OWNED[section]:
                raise RunError(f"{config.where(section, key)}: set by the pipeline itself")
    trained = [m for m in config.methods if m.method != "base"]
    method_keys = {key for m in trained for key in known_train_keys(config_class(m.method))}
    for key in config.train:
        if key != "config" and key not in method_keys:
            raise RunError(f"{config.where('train', key)}: no method here has this option")
    for index, method in enumerate(config.methods):
        if method.method == "base":
            continue
        for key in [*config.train, *method.train]:
            if key in _OWNED["train"]:
                where = config.where("methods", str(index), "train", key)
                raise RunError(f"{where}: set by the pipeline itself")
        cls = config_class(method.method)
        try:
            if method.method == "memit":
                cls(**train_overrides(config, method, cls, {}))
            else:
                load_config(
                    cls, train_config_file(config), train_overrides(config, method, cls, {})
                )
        except Exception as exc:  # TrainError, or TrainingArguments' own ValueError
            raise RunError(f"{config.where('methods', str(index))}: {exc}") from None


def config_class(method: str) -> type:
    """The config dataclass of a trained method (MEMIT is an edit, not a Trainer)."""
    if method == "memit":
        from mixsd_train import MEMITConfig

        return MEMITConfig
    from mixsd_train import resolve_method

    return resolve_method(method)[0]


def train_config_file(config: RunConfig) -> str | None:
    return config.train.get("config")


def known_train_keys(cls: type) -> set[str]:
    return {f.name for f in fields(cls) if f.init}


def train_overrides(
    config: RunConfig, method: MethodSpec, cls: type, owned: dict[str, Any]
) -> dict[str, Any]:
    """Shared ``train:`` options (those this method's config has) < the method's own < owned."""
    known = known_train_keys(cls)
    shared = {k: v for k, v in config.train.items() if k != "config" and k in known}
    return {"seed": config.seed, **shared, **method.train, **owned}
