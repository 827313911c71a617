"""The methods a run compares and the one place their names and labels are made.

A label names a method's folder (``train/LABEL``), its evaluation (``eval/LABEL.json``) and its
row in the report: the method's name, ``-aALPHA`` for a method trained at a mixing probability,
or the name the config gives it. Rollout files are shared by every method trained on them (MixSD
and MixSD-KL at the same alpha), so they carry a label of their own, :func:`rollout_label`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from mixsd_base import ConfigError

__all__ = [
    "METHOD_NAMES",
    "ROLLOUT_METHODS",
    "MethodSpec",
    "method_label",
    "rollout_label",
]

# "base" is the untrained model: evaluated, never trained.
MethodName = Literal["base", "sft", "mixsd", "mixsd-kl", "opsd", "opsd-nll", "memit"]
METHOD_NAMES: tuple[str, ...] = get_args(MethodName)
ROLLOUT_METHODS = ("mixsd", "mixsd-kl")  # trained on the mixed rollouts at their alpha

# What a method is trained on (the report reads it from run.json, never from a label):
# "records" = the canonical targets, "rollout" = mixed rollouts, "edit" = MEMIT's closed-form
# edit of the records' rewrites, "base" = nothing.
KINDS = {
    "base": "base",
    "sft": "records",
    "mixsd": "rollout",
    "mixsd-kl": "rollout",
    "opsd": "records",
    "opsd-nll": "records",
    "memit": "edit",
}


def method_label(method: str, alpha: float | None = None) -> str:
    """``sft``, ``mixsd-a0.3``: a method's default label."""
    return method if alpha is None else f"{method}-a{alpha:g}"


def rollout_label(alpha: float) -> str:
    """The label of the rollout file at ``alpha`` (``rollouts/mixsd-a0.3.jsonl``)."""
    return method_label("mixsd", alpha)


@dataclass
class MethodSpec:
    """One method of the comparison (``sft``, or ``{method: mixsd, alpha: 0.3}``)."""

    method: MethodName = field(metadata={"help": f"One of {', '.join(METHOD_NAMES)}."})
    alpha: float | None = field(
        default=None, metadata={"help": "Mixing probability in [0, 1] (mixsd, mixsd-kl only)."}
    )
    name: str | None = field(
        default=None, metadata={"help": "Folder / table name (default: method, -aALPHA)."}
    )
    train: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "Trainer options for this method only."}
    )

    def __post_init__(self) -> None:
        # The one check of alpha in a run config (RolloutConfig checks it again for its own CLI).
        if self.method in ROLLOUT_METHODS:
            if self.alpha is None or not 0.0 <= self.alpha <= 1.0:
                raise ConfigError("needs an alpha in [0, 1]", field="alpha")
        elif self.alpha is not None:
            raise ConfigError("only mixsd methods take alpha", field="alpha")
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise ConfigError("use letters, digits, . _ -", field="name")

    @property
    def label(self) -> str:
        return self.name or method_label(self.method, self.alpha)

    @property
    def kind(self) -> str:
        return KINDS[self.method]

    @property
    def rollout(self) -> str | None:
        """The label of the rollout file this method trains on (None: it trains on none)."""
        return rollout_label(self.alpha) if self.alpha is not None else None

    @classmethod
    def expand(cls, item: Any) -> Any:
        """The short forms of a method in YAML: ``sft`` and ``mixsd@0.5``."""
        if not isinstance(item, str):
            return item
        name, _, alpha = item.partition("@")
        if not alpha:
            return {"method": name}
        try:
            return {"method": name, "alpha": float(alpha)}
        except ValueError:
            return {"method": name, "alpha": alpha}  # reported as "expected a number"

    def summary(self) -> dict[str, Any]:
        """What run.json records of the method, for the report."""
        return {
            "method": self.method,
            "alpha": self.alpha,
            "name": self.name,
            "train": self.train,
            "label": self.label,
            "kind": self.kind,
            "rollout": self.rollout,
        }
