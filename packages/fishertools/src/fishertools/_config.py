"""The two stage configs (``compute`` and ``compare``) and the user-facing error.

Each config is one dataclass whose fields carry ``help`` metadata; ``__post_init__`` validates,
so a bad value fails before any model is loaded. Loading (defaults < YAML/JSON file < ``--set``
< flags, unknown keys, file:line: field errors) is mixsd_base's ``load_config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mixsd_base import UserError, check_fields, option
from mixsd_core import DTYPE_WORDS

__all__ = ["CompareConfig", "FisherConfig", "FisherError"]


class FisherError(UserError):
    """A user-facing error (missing file, malformed JSONL, shape mismatch): one clear line."""


@dataclass
class FisherConfig:
    """How the diagonal empirical Fisher of a base model is estimated (``fisher compute``)."""

    samples: int | None = option(
        None, "Use the first N records of the data file; null uses every record.", min=1
    )
    chunk_size: int = option(
        8,
        "Per-sample gradients computed at once by vmap; peak memory grows with it "
        "(chunk_size x parameters x dtype bytes).",
        min=1,
    )
    include: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Parameter-name patterns to keep (fnmatch, or a regex after 're:'); empty keeps all."
        },
    )
    exclude: list[str] = field(
        default_factory=list,
        metadata={"help": "Parameter-name patterns to drop after include (same syntax)."},
    )
    max_length: int = option(
        1024, "Truncate each rendered conversation to this many tokens.", min=2
    )
    # Literal fields are checked by the loader; choices check a config built in Python too.
    reduction: Literal["sum", "mean"] = option(
        "sum",
        "Per-sample loss over the response tokens: 'sum' of their NLLs (the paper, Appendix "
        "E.1) or their 'mean' (the training loss at batch size 1; this package's default "
        "before 2026-11-29).",
        choices=("sum", "mean"),
    )
    method: Literal["loop", "vmap"] = option(
        "loop",
        "'loop' (one backward per sample, batch size 1 as in the paper; the least memory) or "
        "'vmap' (torch.func, chunk_size samples at once; same numbers, about 2 x chunk_size "
        "gradient copies in memory).",
        choices=("loop", "vmap"),
    )
    dtype: str = option(
        "float32",
        "dtype of the model, hence of its gradients, when given as a spec: float32/fp32 (CPU), "
        "bfloat16/bf16 (GPU: the run's training dtype), float16/fp16. Gradients are cast to "
        "float32 before squaring and summed in float32 (Appendix E.1) whatever it is.",
        choices=tuple(DTYPE_WORDS),
    )
    device: str | None = option(
        None,
        "torch device for the model and the accumulator (None = cuda if available, else cpu, "
        "as the rollouts and evaluation choose: a GPU run has no CPU-only stage).",
    )

    def __post_init__(self) -> None:
        check_fields(self, error=FisherError)
        for name in ("include", "exclude"):
            for pattern in getattr(self, name):
                _check_pattern(pattern, name)


@dataclass
class CompareConfig:
    """How checkpoints are compared with the base model (``fisher compare``)."""

    forgetting: Path | None = field(
        default=None,
        metadata={
            "help": "Forgetting per checkpoint: a JSON mapping name -> value (or -> {measure: "
            "value}), or a folder of eval JSON files (see README)."
        },
    )
    loss_data: Path | None = field(
        default=None,
        metadata={
            "help": "Optional prompt/response JSONL: measure each checkpoint's ΔNLL (sample mean) "
            "on it (forgetting, and the check of the quadratic prediction)."
        },
    )
    loss_samples: int = option(32, "Records of loss_data used for the measured ΔNLL.", min=1)
    batch_size: int = option(8, "Batch size of the forward passes that measure the loss.", min=1)
    max_length: int = option(1024, "Truncate loss_data conversations to this many tokens.", min=2)
    plot: bool = option(True, "Write a PNG next to the report.")
    device: str | None = option(
        None, "torch device for loss measurement (None = cuda if available, else cpu)."
    )
    evaluate_checkpoints: Literal["all", "selected"] = option(
        "all",
        "mixsd run only (fisher compare reads forgetting from 'forgetting'): 'all' compares "
        "every checkpoint and also runs the held-out and reference-loss suites of eval: on each, "
        "so R4 pools every checkpoint of every method (the paper's Table 6); 'selected' "
        "compares and pools only each method's selected checkpoint, evaluated anyway (cheaper "
        "on CPU: R4 then has one point per method).",
        choices=("all", "selected"),
    )

    def __post_init__(self) -> None:
        if self.forgetting is not None:
            self.forgetting = Path(self.forgetting)
        if self.loss_data is not None:
            self.loss_data = Path(self.loss_data)
        check_fields(self, error=FisherError)


def _check_pattern(pattern: str, name: str) -> None:
    import re

    if pattern.startswith("re:"):
        try:
            re.compile(pattern[3:])
        except re.error as exc:
            raise FisherError(f"bad regex in pattern {pattern!r}: {exc}", field=name) from None
