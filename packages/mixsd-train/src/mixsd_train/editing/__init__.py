"""Knowledge editing (the MEMIT baseline): configs, edit requests, the method, the run.

``import mixsd_train.editing`` stays light; names backed by torch load on first use.
"""

from __future__ import annotations

import importlib

from mixsd_train.editing._config import PAPER_LAYERS, MEMITConfig, default_layers, parse_layers
from mixsd_train.editing._requests import EditRequest, read_edit_requests
from mixsd_train.editing._run import EDIT_METHODS, EditMethod, resolve_edit_method, run_memit

_LAZY = {
    **dict.fromkeys(
        (
            "apply_memit",
            "compute_keys",
            "compute_target",
            "compute_targets",
            "context_templates",
            "rewrite_accuracy",
            "spread_update",
            "subject_outputs",
        ),
        "mixsd_train.editing._memit",
    ),
    **dict.fromkeys(
        ("CORPORA", "corpus_chunks", "corpus_text", "second_moments", "stats_dir"),
        "mixsd_train.editing._stats",
    ),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mixsd_train.editing' has no attribute {name!r}")


__all__ = [
    "CORPORA",
    "EDIT_METHODS",
    "PAPER_LAYERS",
    "EditMethod",
    "EditRequest",
    "MEMITConfig",
    "apply_memit",
    "compute_keys",
    "compute_target",
    "compute_targets",
    "context_templates",
    "corpus_chunks",
    "corpus_text",
    "default_layers",
    "parse_layers",
    "read_edit_requests",
    "resolve_edit_method",
    "rewrite_accuracy",
    "run_memit",
    "second_moments",
    "spread_update",
    "stats_dir",
    "subject_outputs",
]
