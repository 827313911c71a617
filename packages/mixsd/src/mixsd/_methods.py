"""The methods a run compares and the one place their names and labels are made.

A label names a method's folder (``train/LABEL``), its evaluation (``eval/LABEL.json``) and its
row in the report: the method's name, ``-aALPHA`` for a method trained at a mixing probability,
or the name the config gives it. Rollout files are shared by every method trained on them (MixSD
and MixSD-KL at the same alpha and rollout options), so they carry a label of their own,
:func:`rollout_label`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from mixsd_base import ConfigError

__all__ = [
    "METHOD_NAMES",
    "ROLLOUT_METHODS",
    "MethodSpec",
    "method_label",
    "rollout_key",
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


def method_label(
    method: str, alpha: float | None = None, rollout: Mapping[str, Any] | None = None
) -> str:
    """``sft``, ``mixsd-a0.3``, ``mixsd-a0.5-gate-tau0.2``: a method's default label (its
    rollout options after the alpha: the mixing policy by name, then each other key and value;
    a switch by its name alone, ``mixsd-a1-gate-answer_guard-tau0.5``)."""
    if alpha is None:
        return method
    items = sorted((rollout or {}).items(), key=lambda kv: (kv[0] != "mixing", kv[0]))
    parts = [str(v) if k == "mixing" else _part(k, v) for k, v in items]
    return "-".join([f"{method}-a{alpha:g}", *parts])


def _part(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return key if value else f"no_{key}"
    return f"{key}{value:g}" if isinstance(value, float) else f"{key}{value}"


def rollout_key(label: str) -> str:
    """A rollout file's short name in run.json and summaries: ``0.3``, ``0.5-gate-tau0.2``."""
    return label.removeprefix("mixsd-a")  # rollout_label's prefix


def rollout_label(alpha: float, rollout: Mapping[str, Any] | None = None) -> str:
    """The label of the rollout file at ``alpha`` with a method's rollout options
    (``rollouts/mixsd-a0.3.jsonl``, ``rollouts/mixsd-a0.5-gate-tau0.2.jsonl``)."""
    return method_label("mixsd", alpha, rollout)


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
    rollout: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "Rollout options for this method's targets only (mixsd, mixsd-kl), over "
            "the rollout section: e.g. {mixing: gate, tau: 0.2} or {max_retries: 20}. Its "
            "rollout file is its own (mixsd-a0.5-gate-tau0.2), shared with a method of the "
            "same alpha and options."
        },
    )

    def __post_init__(self) -> None:
        # The one check of alpha in a run config (RolloutConfig checks it again for its own CLI).
        if self.method in ROLLOUT_METHODS:
            if self.alpha is None or not 0.0 <= self.alpha <= 1.0:
                raise ConfigError("needs an alpha in [0, 1]", field="alpha")
        elif self.alpha is not None:
            raise ConfigError("only mixsd methods take alpha", field="alpha")
        if self.rollout:
            if self.method not in ROLLOUT_METHODS:
                raise ConfigError("only mixsd methods take rollout options", field="rollout")
            fixed = sorted(set(self.rollout) & {"alpha", "seed", "model", "data", "out"})
            if fixed:
                raise ConfigError(
                    f"{fixed} are set by the run, not per method (alpha: the method's own)",
                    field="rollout",
                )
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise ConfigError("use letters, digits, . _ -", field="name")

    @property
    def label(self) -> str:
        return self.name or method_label(self.method, self.alpha, self.rollout)

    @property
    def kind(self) -> str:
        return KINDS[self.method]

    @property
    def rollout_name(self) -> str | None:
        """The label of the rollout file this method trains on (None: it trains on none)."""
        return rollout_label(self.alpha, self.rollout) if self.alpha is not None else None

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
            "rollout": self.rollout_name,
            "rollout_options": self.rollout,
        }
