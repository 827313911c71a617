"""The two stage configs (``compute`` and ``compare``) and the user-facing error.

Each config is one dataclass whose fields carry ``help`` metadata; ``__post_init__`` validates,
so a bad value fails before any model is loaded. Loading (defaults < YAML/JSON file < ``--set``
< flags, unknown keys, file:line: field errors) is mixsd_base's ``load_config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mixsd_base import UserError
from mixsd_core import DTYPE_WORDS

__all__ = ["CompareConfig", "FisherConfig", "FisherError"]


class FisherError(UserError):
    """A user-facing error (missing file, malformed JSONL, shape mismatch): one clear line."""


@dataclass
class FisherConfig:
    """How the diagonal empirical Fisher of a base model is estimated (``fisher compute``)."""

    samples: int | None = field(
        default=None,
        metadata={"help": "Use the first N records of the data file; null uses every record."},
    )
    chunk_size: int = field(
        default=8,
        metadata={
            "help": "Per-sample gradients computed at once by vmap; peak memory grows with it "
            "(chunk_size x parameters x dtype bytes)."
        },
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
    max_length: int = field(
        default=1024,
        metadata={"help": "Truncate each rendered conversation to this many tokens."},
    )
    reduction: Literal["mean", "sum"] = field(
        default="mean",
        metadata={
            "help": "Per-sample NLL over response tokens: 'mean' (the usual training loss at "
            "batch size 1) or 'sum'."
        },
    )
    method: Literal["vmap", "loop"] = field(
        default="vmap",
        metadata={
            "help": "'vmap' (torch.func, vectorised in chunks) or 'loop' (plain per-sample "
            "backward, the reference)."
        },
    )
    dtype: str = field(
        default="float32",
        metadata={
            "help": "dtype the model is loaded in when given as a spec: float32/fp32 (CPU), "
            "bfloat16/bf16 (GPU), float16/fp16; the Fisher is always accumulated in float32."
        },
    )
    device: str = field(
        default="cpu", metadata={"help": "torch device for the model and the accumulator."}
    )

    def __post_init__(self) -> None:
        if self.samples is not None and self.samples < 1:
            raise FisherError(f"must be >= 1 or null, got {self.samples}", field="samples")
        if self.chunk_size < 1:
            raise FisherError(f"must be >= 1, got {self.chunk_size}", field="chunk_size")
        if self.max_length < 2:
            raise FisherError(f"must be >= 2, got {self.max_length}", field="max_length")
        # Literal fields are checked by the loader; a config built in Python is checked here.
        _choice("reduction", self.reduction, ("mean", "sum"))
        _choice("method", self.method, ("vmap", "loop"))
        _choice("dtype", self.dtype, tuple(DTYPE_WORDS))
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
    loss_samples: int = field(
        default=32, metadata={"help": "Records of loss_data used for the measured ΔNLL."}
    )
    batch_size: int = field(
        default=8, metadata={"help": "Batch size of the forward passes that measure the loss."}
    )
    max_length: int = field(
        default=1024, metadata={"help": "Truncate loss_data conversations to this many tokens."}
    )
    plot: bool = field(default=True, metadata={"help": "Write a PNG next to the report."})
    device: str = field(default="cpu", metadata={"help": "torch device for loss measurement."})

    def __post_init__(self) -> None:
        if self.forgetting is not None:
            self.forgetting = Path(self.forgetting)
        if self.loss_data is not None:
            self.loss_data = Path(self.loss_data)
        for name in ("loss_samples", "batch_size"):
            if getattr(self, name) < 1:
                raise FisherError(f"must be >= 1, got {getattr(self, name)}", field=name)
        if self.max_length < 2:
            raise FisherError(f"must be >= 2, got {self.max_length}", field="max_length")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise FisherError(f"must be one of {', '.join(choices)}; got {value!r}", field=name)


def _check_pattern(pattern: str, name: str) -> None:
    import re

    if pattern.startswith("re:"):
        try:
            re.compile(pattern[3:])
        except re.error as exc:
            raise FisherError(f"bad regex in pattern {pattern!r}: {exc}", field=name) from None
