"""The two stage configs (``compute`` and ``compare``), the user-facing error, config loading.

Each config is one dataclass whose fields carry ``help`` metadata; ``__post_init__`` validates,
so a bad value fails before any model is loaded. Configs load as defaults < YAML/JSON file <
CLI flags, and an unknown key is an error naming the file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["CompareConfig", "FisherConfig", "FisherError", "load_config"]

METHODS = ("vmap", "loop")
REDUCTIONS = ("mean", "sum")
DTYPES = ("float32", "bfloat16", "float16")


class FisherError(Exception):
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
    reduction: str = field(
        default="mean",
        metadata={
            "help": "Per-sample NLL over response tokens: 'mean' (the usual training loss at "
            "batch size 1) or 'sum'."
        },
    )
    method: str = field(
        default="vmap",
        metadata={
            "help": "'vmap' (torch.func, vectorised in chunks) or 'loop' (plain per-sample "
            "backward, the reference)."
        },
    )
    dtype: str = field(
        default="float32",
        metadata={
            "help": "dtype the model is loaded in when given as a path (float32 on CPU, bfloat16 "
            "on GPU); the Fisher is always accumulated in float32."
        },
    )
    device: str = field(
        default="cpu", metadata={"help": "torch device for the model and the accumulator."}
    )

    def __post_init__(self) -> None:
        if self.samples is not None and self.samples < 1:
            raise FisherError(f"samples must be >= 1 or null, got {self.samples}")
        if self.chunk_size < 1:
            raise FisherError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.max_length < 2:
            raise FisherError(f"max_length must be >= 2, got {self.max_length}")
        _choice("reduction", self.reduction, REDUCTIONS)
        _choice("method", self.method, METHODS)
        _choice("dtype", self.dtype, DTYPES)
        for pattern in [*self.include, *self.exclude]:
            _check_pattern(pattern)


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
            "help": "Optional prompt/response JSONL: measure the reference-loss increase of each "
            "checkpoint on it (the check of the quadratic prediction)."
        },
    )
    loss_samples: int = field(
        default=32, metadata={"help": "Records of loss_data used for the measured loss increase."}
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
                raise FisherError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_length < 2:
            raise FisherError(f"max_length must be >= 2, got {self.max_length}")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise FisherError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _check_pattern(pattern: str) -> None:
    import re

    if pattern.startswith("re:"):
        try:
            re.compile(pattern[3:])
        except re.error as exc:
            raise FisherError(f"bad regex in pattern {pattern!r}: {exc}") from None


C = TypeVar("C", FisherConfig, CompareConfig)


def load_config(
    cls: type[C], path: Path | None = None, overrides: dict[str, Any] | None = None
) -> C:
    """Build ``cls`` from defaults < a YAML/JSON file < ``overrides`` (``None`` values = unset)."""
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_read_mapping(Path(path)))
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise FisherError(
            f"{Path(path).absolute()}: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    # None means "not given on the command line", so falsy values such as 0 or [] still override.
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return cls(**values)
    except TypeError as exc:
        raise FisherError(f"bad config: {exc}") from None


def _read_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FisherError(f"config file not found: {path.absolute()}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml  # a dependency of transformers

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:
        raise FisherError(f"{path.absolute()}: cannot parse config: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FisherError(f"{path.absolute()}: the config root must be a mapping")
    return data
