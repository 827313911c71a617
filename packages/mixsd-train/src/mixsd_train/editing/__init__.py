"""Knowledge editing (the MEMIT baseline): configs, edit requests, the method, the run.

``import mixsd_train.editing`` stays light; names backed by torch load on first use.
"""

from __future__ import annotations

from mixsd_base import lazy_exports, lazy_table
from mixsd_train.editing._config import PAPER_LAYERS, MEMITConfig, default_layers, parse_layers
from mixsd_train.editing._requests import EditRequest, read_edit_requests
from mixsd_train.editing._run import EDIT_METHODS, EditMethod, resolve_edit_method, run_memit

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **lazy_table("mixsd_train.editing._memit"),  # every name of its __all__
        **lazy_table(
            "mixsd_train.editing._stats",
            ("CORPORA", "corpus_chunks", "corpus_text", "second_moments", "stats_dir"),
        ),
    },
)

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
