"""mixsd-train: SFT, MixSD, MixSD-KL, OPSD and OPSD-NLL trainers on ``transformers.Trainer``.

``import mixsd_train`` stays light; names backed by torch / transformers load on first use.
"""

from __future__ import annotations

import importlib

from mixsd_train._errors import TrainError
from mixsd_train._run import METHODS, Method

__version__ = "0.1.0"

_LAZY = {
    **dict.fromkeys(
        (
            "MixSDConfig",
            "MixSDKLConfig",
            "OPSDConfig",
            "OPSDNLLConfig",
            "SFTConfig",
            "TrainConfig",
            "load_config",
            "parse_overrides",
        ),
        "mixsd_train._config",
    ),
    **dict.fromkeys(
        ("MixSDKLTrainer", "NLLTrainer", "OPSDNLLTrainer", "OPSDTrainer"), "mixsd_train._trainers"
    ),
    **dict.fromkeys(("masked_nll", "teacher_top1_nll", "topk_forward_kl"), "mixsd_train._losses"),
    **dict.fromkeys(
        ("ExampleDataset", "PadCollator", "encode_pair", "read_records_file", "read_rollouts_file"),
        "mixsd_train._data",
    ),
    **dict.fromkeys(("ValidationCallback", "greedy_accuracy"), "mixsd_train._validation"),
    **dict.fromkeys(
        ("accuracy_curve", "converged", "first_peak", "last", "select_checkpoint"),
        "mixsd_train._select",
    ),
    **dict.fromkeys(("resolve_method", "train"), "mixsd_train._run"),
    **dict.fromkeys(
        ("EditRequest", "MEMITConfig", "read_edit_requests", "run_memit"), "mixsd_train.editing"
    ),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mixsd_train' has no attribute {name!r}")


__all__ = [
    "METHODS",
    "EditRequest",
    "ExampleDataset",
    "MEMITConfig",
    "Method",
    "MixSDConfig",
    "MixSDKLConfig",
    "MixSDKLTrainer",
    "NLLTrainer",
    "OPSDConfig",
    "OPSDNLLConfig",
    "OPSDNLLTrainer",
    "OPSDTrainer",
    "PadCollator",
    "SFTConfig",
    "TrainConfig",
    "TrainError",
    "ValidationCallback",
    "__version__",
    "accuracy_curve",
    "converged",
    "encode_pair",
    "first_peak",
    "greedy_accuracy",
    "last",
    "load_config",
    "masked_nll",
    "parse_overrides",
    "read_edit_requests",
    "read_records_file",
    "read_rollouts_file",
    "resolve_method",
    "run_memit",
    "select_checkpoint",
    "teacher_top1_nll",
    "topk_forward_kl",
    "train",
]
