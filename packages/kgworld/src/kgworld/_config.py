"""One dataclass config for world generation: defaults < preset < YAML/JSON file < CLI flags.

Every field carries ``help`` metadata (shown by ``kgworld gen --help`` and in the README).
Unknown keys and wrong types are errors that name the file and the field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

KGFACT_SPLITS = ("train", "paraphrase", "twohop", "retrieval")
KGFUNC_SPLITS = ("train", "test", "unseen")
EDIT_SPLITS = ("train", "paraphrase", "multihop", "locality")


class KGWorldError(Exception):
    """A user-facing error: bad config, bad input file, impossible world. One clear line."""


class ConfigError(KGWorldError, ValueError):
    """A config file or value that cannot be used."""


@dataclass
class KGFactConfig:
    """KGFact: atomic facts of a fictional knowledge graph and the splits built from them."""

    domains: int = field(
        default=5,
        metadata={
            "help": "Number of entity domains, taken in order from Person, Location, Organization, Event, "
            "Profession, Hobby, Skill."
        },
    )
    entities_per_domain: int = field(default=10, metadata={"help": "Invented entities per domain."})
    relations_per_pair: int = field(
        default=10,
        metadata={
            "help": "Typed relations used per ordered domain pair (at most the 10 authored ones)."
        },
    )
    splits: list[str] = field(
        default_factory=lambda: list(KGFACT_SPLITS),
        metadata={"help": "KGFact splits to write: any of train, paraphrase, twohop, retrieval."},
    )
    instruction: str = field(
        default="Answer in one sentence and put the final answer within \\boxed{}.",
        metadata={
            "help": "Instruction appended to every KGFact question (a blank line before it); '' for none."
        },
    )
    twohop_limit: int | None = field(
        default=None,
        metadata={
            "help": "Keep at most this many two-hop questions (a deterministic sample); null keeps every path."
        },
    )
    retrieval_context_size: int = field(
        default=50,
        metadata={"help": "Statements in each retrieval context: the gold fact plus distractors."},
    )
    retrieval_limit: int | None = field(
        default=None,
        metadata={
            "help": "Build retrieval questions for at most this many facts (a deterministic sample); null = all."
        },
    )

    def __post_init__(self) -> None:
        _positive(self, "domains", "entities_per_domain", "relations_per_pair")
        if self.domains < 2:
            raise ConfigError("kgfact.domains must be at least 2 (facts link two domains)")
        if self.retrieval_context_size < 1:
            raise ConfigError("kgfact.retrieval_context_size must be at least 1")
        for name in ("twohop_limit", "retrieval_limit"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"kgfact.{name} must be >= 0 or null, got {value}")
        _known_splits("kgfact", self.splits, KGFACT_SPLITS)


@dataclass
class KGFuncConfig:
    """KGFunc: opaque digit operations learned from 10-shot prompts with chain-of-thought targets."""

    enabled: bool = field(default=True, metadata={"help": "Write the KGFunc splits."})
    splits: list[str] = field(
        default_factory=lambda: list(KGFUNC_SPLITS),
        metadata={"help": "KGFunc splits to write: any of train, test, unseen."},
    )
    train_ops: list[str] = field(
        default_factory=lambda: list("BCDEFGH"),
        metadata={"help": "Labels of the training operations (the paper's B-H)."},
    )
    unseen_ops: list[str] = field(
        default_factory=lambda: list("abcdefghijklmnopqrst"),
        metadata={
            "help": "Labels of the familiar operations never trained on (a-t), the forgetting probe."
        },
    )
    train_size: int = field(
        default=1600,
        metadata={"help": "Training instances in total, spread evenly over train_ops."},
    )
    test_per_op: int = field(
        default=25, metadata={"help": "Test instances per training operation."}
    )
    unseen_per_op: int = field(default=25, metadata={"help": "Instances per unseen operation."})
    max_input: int = field(
        default=99999, metadata={"help": "Inputs are drawn uniformly from [0, max_input]."}
    )
    instruction: str = field(
        default="Please reason step by step, and put your final answer within \\boxed{}.",
        metadata={"help": "Instruction appended to every KGFunc prompt."},
    )

    def __post_init__(self) -> None:
        _positive(self, "train_size", "test_per_op", "unseen_per_op", "max_input")
        _known_splits("kgfunc", self.splits, KGFUNC_SPLITS)
        for name in ("train_ops", "unseen_ops"):
            labels = getattr(self, name)
            if len(set(labels)) != len(labels):
                raise ConfigError(f"kgfunc.{name} has duplicate labels: {labels}")


@dataclass
class EditConfig:
    """The edit split: counterfactual revisions of KGFact train facts (knowledge editing)."""

    enabled: bool = field(
        default=False,
        metadata={"help": "Write the edit splits under edit/ (the small and large presets do)."},
    )
    splits: list[str] = field(
        default_factory=lambda: list(EDIT_SPLITS),
        metadata={"help": "Edit splits to write: any of train, paraphrase, multihop, locality."},
    )
    count: int = field(
        default=100,
        metadata={
            "help": "Facts to edit, a deterministic sample of the KGFact train facts; each gets a "
            "new object of the same domain (at most the number of facts)."
        },
    )
    multihop_min_hops: int = field(
        default=2, metadata={"help": "Shortest multi-hop question (hops), at least 2."}
    )
    multihop_max_hops: int = field(
        default=4,
        metadata={
            "help": "Longest multi-hop question (hops); a world with D domains has at most D-1."
        },
    )
    multihop_per_hops: int | None = field(
        default=100,
        metadata={
            "help": "Keep at most this many multi-hop questions per hop count (a deterministic "
            "sample); null keeps every chain through an edit."
        },
    )
    locality_count: int = field(
        default=100,
        metadata={
            "help": "Locality questions on unedited facts: neighbours of the edits (sharing an "
            "entity) first, then other facts; fewer when the world has fewer unedited facts."
        },
    )

    def __post_init__(self) -> None:
        _positive(self, "count", "multihop_min_hops", "multihop_max_hops")
        if self.multihop_min_hops < 2:
            raise ConfigError(f"edit.multihop_min_hops must be >= 2, got {self.multihop_min_hops}")
        if self.multihop_max_hops < self.multihop_min_hops:
            raise ConfigError(
                f"edit.multihop_max_hops={self.multihop_max_hops} is below "
                f"edit.multihop_min_hops={self.multihop_min_hops}"
            )
        if self.multihop_per_hops is not None and self.multihop_per_hops < 0:
            raise ConfigError(
                f"edit.multihop_per_hops must be >= 0 or null, got {self.multihop_per_hops}"
            )
        if self.locality_count < 0:
            raise ConfigError(f"edit.locality_count must be >= 0, got {self.locality_count}")
        _known_splits("edit", self.splits, EDIT_SPLITS)
        if self.splits and "train" not in self.splits:
            raise ConfigError("edit.splits must include train: the other edit splits refer to it")


@dataclass
class WorldConfig:
    """Everything that determines a world; the same config and seed give the same bytes."""

    seed: int = field(
        default=42,
        metadata={"help": "Seed of every random draw (names, edges, templates, KGFunc inputs)."},
    )
    preset: str | None = field(
        default=None,
        metadata={
            "help": "Size preset applied before the file and flags: small (5 x 10, 50 edits) or large (7 x 25, 100 edits)."
        },
    )
    kgfact: KGFactConfig = field(
        default_factory=KGFactConfig, metadata={"help": "KGFact settings."}
    )
    kgfunc: KGFuncConfig = field(
        default_factory=KGFuncConfig, metadata={"help": "KGFunc settings."}
    )
    edit: EditConfig = field(
        default_factory=EditConfig, metadata={"help": "Edit split (knowledge editing) settings."}
    )

    def __post_init__(self) -> None:
        if self.preset is not None and self.preset not in PRESETS:
            raise ConfigError(
                f"unknown preset {self.preset!r}; choose one of: {', '.join(PRESETS)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# The small world has 100 facts: editing half of them leaves 50 unedited for locality.
PRESETS: dict[str, dict[str, Any]] = {
    "small": {
        "kgfact": {"domains": 5, "entities_per_domain": 10},
        "edit": {"enabled": True, "count": 50},
    },
    "large": {
        "kgfact": {"domains": 7, "entities_per_domain": 25},
        "edit": {"enabled": True, "count": 100},
    },
}


def _positive(obj: Any, *names: str) -> None:
    section = type(obj).__name__.removesuffix("Config").lower()
    for name in names:
        value = getattr(obj, name)
        if value < 1:
            raise ConfigError(f"{section}.{name} must be a positive integer, got {value}")


def _known_splits(section: str, splits: list[str], known: tuple[str, ...]) -> None:
    for split in splits:
        if split not in known:
            raise ConfigError(
                f"{section}.splits: unknown split {split!r}; known: {', '.join(known)}"
            )


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _check_type(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        hint = next(h for h in options if h is not type(None))
        origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, str) and item is str:
            value = list(value)  # "BCDEFGH" is a handy spelling of a label list
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]!s}; known keys here: {', '.join(sorted(known))}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        path = f"{where}.{name}" if where else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, path)
        else:
            kwargs[name] = _check_type(value, hint, path)
    return cls(**kwargs)


def resolve_config(
    file_data: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None
) -> WorldConfig:
    """Resolve defaults < preset < file < overrides into a validated :class:`WorldConfig`.

    ``overrides`` uses the same nested shape as the file; ``None`` values there mean "unset".
    """
    file_data = dict(file_data or {})
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    preset = overrides.get("preset", file_data.get("preset"))
    data: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        data = _merge(data, PRESETS[preset])
    data = _merge(data, file_data)
    data = _merge(data, overrides)
    return _build(WorldConfig, data, "")


def config_help(cls: type = WorldConfig, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, help) for every field, nested sections flattened."""
    rows: list[tuple[str, Any, str]] = []
    hints = typing.get_type_hints(cls)
    instance = cls()
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            rows.extend(config_help(hints[f.name], f"{key}."))
        else:
            rows.append((key, getattr(instance, f.name), f.metadata.get("help", "")))
    return rows
