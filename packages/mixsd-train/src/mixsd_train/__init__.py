"""mixsd-train: SFT, MixSD, MixSD-KL, OPSD and OPSD-NLL trainers on ``transformers.Trainer``.

``import mixsd_train`` stays light; names backed by torch / transformers load on first use.
"""

from __future__ import annotations

from mixsd_base import lazy_exports, lazy_table, load_config, parse_overrides
from mixsd_train._errors import TrainError
from mixsd_train._run import METHODS, Method, resolve_method, train
from mixsd_train._select import (
    RULES,
    SelectConfig,
    accuracy_curve,
    converged,
    first_peak,
    last,
    paper,
    pick_learning_rate,
    select_checkpoint,
    select_learning_rate,
)
from mixsd_train.editing import EditRequest, MEMITConfig, read_edit_requests, run_memit

__version__ = "0.1.0"

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        # every name of these modules' __all__
        **lazy_table("mixsd_train._config"),
        **lazy_table("mixsd_train._trainers"),
        **lazy_table("mixsd_train._losses"),
        **lazy_table("mixsd_train._validation"),
        # some of _data's
        **lazy_table(
            "mixsd_train._data",
            (
                "ExampleDataset",
                "PadCollator",
                "encode_pair",
                "read_records_file",
                "read_rollouts_file",
            ),
        ),
    },
)

__all__ = [
    "METHODS",
    "RULES",
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
    "SelectConfig",
    "TrainConfig",
    "TrainError",
    "ValidationCallback",
    "__version__",
    "accuracy_curve",
    "checkpoint_accuracy",
    "converged",
    "encode_pair",
    "first_peak",
    "greedy_accuracy",
    "last",
    "load_config",
    "masked_nll",
    "paper",
    "parse_overrides",
    "pick_learning_rate",
    "read_edit_requests",
    "read_records_file",
    "read_rollouts_file",
    "resolve_method",
    "run_memit",
    "select_checkpoint",
    "select_learning_rate",
    "teacher_top1_nll",
    "topk_forward_kl",
    "train",
]
