"""One dataclass config for world generation: defaults < preset < YAML/JSON file < CLI flags.

Every field carries ``help`` metadata (shown by ``kgworld config`` and in the README). Loading,
type checks, unknown keys (with a did-you-mean) and ``file:line: field 'a.b'`` errors are
mixsd_base's; this module adds the presets and kgworld's own error classes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mixsd_base
from mixsd_base import (
    ConfigSource,
    UserError,
    build_config,
    check_fields,
    merge,
    nest,
    option,
    read_config_file,
    suggest,
)

KGFACT_SPLITS = ("train", "paraphrase", "twohop", "retrieval")
KGFUNC_SPLITS = ("train", "test", "unseen")
EDIT_SPLITS = ("train", "paraphrase", "multihop", "locality")

# The paper's instruction (the authors' code appends it to every KGFact and KGFunc question),
# and the one-sentence one that suits small CPU models (short targets, small generation budgets).
STEP_BY_STEP_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
ONE_SENTENCE_INSTRUCTION = "Answer in one sentence and put the final answer within \\boxed{}."
# Names a config may give instead of the text.
KGFACT_INSTRUCTIONS = {
    "step-by-step": STEP_BY_STEP_INSTRUCTION,
    "one-sentence": ONE_SENTENCE_INSTRUCTION,
}
# KGFact target forms: "answer" is the authors' ("The answer is X.", a blank line, \boxed{X};
# several facts as "Step k:" lines, then "So the answer is X."), "statement" restates the facts
# ("S was born in X. \boxed{X}").
TARGET_FORMS = ("answer", "statement")


class KGWorldError(UserError):
    """A user-facing error: bad config, bad input file, impossible world. One clear line."""


class ConfigError(KGWorldError, mixsd_base.ConfigError):
    """A config file or value that cannot be used."""


class DataError(KGWorldError, mixsd_base.DataError):
    """A world folder or input file that cannot be read."""


@contextmanager
def kgworld_errors(kind: type[KGWorldError]) -> Iterator[None]:
    """Raise the shared readers' user errors as ``kind`` (same message, file, line and field),
    so ``except kgworld.KGWorldError`` catches every user error kgworld's API raises."""
    try:
        yield
    except KGWorldError:
        raise
    except UserError as exc:
        raise kind(exc.message, path=exc.path, line=exc.line, field=exc.field) from exc


def _instruction_text(value: Any) -> Any:
    """A named instruction (``step-by-step``, ``one-sentence``) becomes its text; other text stays."""
    return KGFACT_INSTRUCTIONS.get(value, value) if isinstance(value, str) else value


def _labels(value: Any) -> Any:
    """``"BCDEFGH"`` is a handy spelling of the label list ``["B", "C", ..., "H"]``."""
    return list(value) if isinstance(value, str) else value


@dataclass
class KGFactConfig:
    """KGFact: atomic facts of a fictional knowledge graph and the splits built from them."""

    domains: int = option(
        5,
        "Number of entity domains, taken in order from Person, Location, Organization, Event, "
        "Profession, Hobby, Skill.",
    )
    entities_per_domain: int = option(10, "Invented entities per domain.", min=1)
    relations_per_pair: int = option(
        10, "Typed relations used per ordered domain pair (at most the 10 authored ones).", min=1
    )
    splits: list[str] = field(
        default_factory=lambda: list(KGFACT_SPLITS),
        metadata={
            "help": "KGFact splits to write: any of train, paraphrase, twohop, retrieval "
            "(questions about a second knowledge base, disjoint from the world's entities)."
        },
    )
    instruction: str = option(
        STEP_BY_STEP_INSTRUCTION,
        "Instruction appended to every KGFact question (a blank line before it): "
        "'step-by-step' (the paper's: reason step by step, answer in \\boxed{}), "
        "'one-sentence' (answer in one sentence, in \\boxed{}; short targets for small CPU "
        "models), any other text, or '' for none.",
        coerce=_instruction_text,
    )
    target: str = option(
        "answer",
        "Target form: 'answer' (the authors': 'The answer is X.', a blank line, \\boxed{X}; "
        "two-hop: 'Step 1:' and 'Step 2:' lines with the facts, then 'So the answer is X.') or "
        "'statement' (the fact restated, then \\boxed{X}: 'S was born in X. \\boxed{X}').",
        choices=TARGET_FORMS,
    )
    twohop_limit: int | None = option(
        None,
        "Keep at most this many two-hop questions (a deterministic sample); null keeps every path.",
        min=0,
    )
    retrieval_context_size: int = option(
        50, "Statements in each retrieval context: the gold fact plus distractors.", min=1
    )
    retrieval_limit: int | None = option(
        None,
        "Build retrieval questions for at most this many facts of the retrieval knowledge "
        "base (a deterministic sample); null = all.",
        min=0,
    )

    def __post_init__(self) -> None:
        self.instruction = _instruction_text(self.instruction)  # also when built in Python
        check_fields(self, error=ConfigError)
        if self.domains < 2:
            raise ConfigError("must be at least 2 (facts link two domains)", field="domains")
        _known_splits(self.splits, KGFACT_SPLITS)


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
        metadata={
            "help": "Labels of the training operations (the paper's B-H).",
            "coerce": _labels,
        },
    )
    unseen_ops: list[str] = field(
        default_factory=lambda: list("abcdefghijklmnopqrst"),
        metadata={
            "help": "Labels of the familiar operations never trained on (a-t), the forgetting probe.",
            "coerce": _labels,
        },
    )
    train_size: int = option(
        1600, "Training instances in total, spread evenly over train_ops.", min=1
    )
    test_per_op: int = option(25, "Test instances per training operation.", min=1)
    unseen_per_op: int = option(25, "Instances per unseen operation.", min=1)
    max_input: int = option(99999, "Inputs are drawn uniformly from [0, max_input].", min=1)
    instruction: str = option(
        STEP_BY_STEP_INSTRUCTION, "Instruction appended to every KGFunc prompt."
    )

    def __post_init__(self) -> None:
        check_fields(self, error=ConfigError)
        _known_splits(self.splits, KGFUNC_SPLITS)
        for name in ("train_ops", "unseen_ops"):
            labels = getattr(self, name)
            if len(set(labels)) != len(labels):
                raise ConfigError(f"has duplicate labels: {labels}", field=name)


@dataclass
class EditConfig:
    """The edit split: counterfactual revisions of KGFact train facts (knowledge editing)."""

    enabled: bool = option(
        False, "Write the edit splits under edit/ (the small and large presets do)."
    )
    splits: list[str] = field(
        default_factory=lambda: list(EDIT_SPLITS),
        metadata={"help": "Edit splits to write: any of train, paraphrase, multihop, locality."},
    )
    count: int = option(
        100,
        "Facts to edit, a deterministic sample of the KGFact train facts; each gets a "
        "new object of the same domain (at most the number of facts).",
        min=1,
    )
    multihop_min_hops: int = option(2, "Shortest multi-hop question (hops), at least 2.", min=2)
    multihop_max_hops: int = option(
        4, "Longest multi-hop question (hops); a world with D domains has at most D-1.", min=1
    )
    multihop_per_hops: int | None = option(
        100,
        "Keep at most this many multi-hop questions per hop count (a deterministic "
        "sample); null keeps every chain through an edit.",
        min=0,
    )
    locality_count: int = option(
        100,
        "Locality questions on unedited facts: neighbours of the edits (sharing an "
        "entity) first, then other facts; fewer when the world has fewer unedited facts.",
        min=0,
    )

    def __post_init__(self) -> None:
        check_fields(self, error=ConfigError)
        if self.multihop_max_hops < self.multihop_min_hops:
            raise ConfigError(
                f"{self.multihop_max_hops} is below multihop_min_hops={self.multihop_min_hops}",
                field="multihop_max_hops",
            )
        _known_splits(self.splits, EDIT_SPLITS)
        if self.splits and "train" not in self.splits:
            raise ConfigError(
                "must include train: the other edit splits refer to it", field="splits"
            )


@dataclass
class WorldConfig:
    """Everything that determines a world; the same config and seed give the same bytes."""

    seed: int = option(42, "Seed of every random draw (names, edges, templates, KGFunc inputs).")
    preset: str | None = option(
        None,
        "Size preset applied before the file and flags: small (5 x 10, 50 edits) or large (7 x 25, 100 edits).",
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
                f"unknown preset {self.preset!r}{suggest(self.preset, list(PRESETS))}; "
                f"choose one of: {', '.join(PRESETS)}",
                field="preset",
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


def _known_splits(splits: list[str], known: tuple[str, ...]) -> None:
    for split in splits:
        if split not in known:
            raise ConfigError(
                f"unknown split {split!r}{suggest(split, list(known))}; known: {', '.join(known)}",
                field="splits",
            )


def resolve_config(
    file_data: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None
) -> WorldConfig:
    """Resolve defaults < preset < file < overrides into a validated :class:`WorldConfig`.

    ``overrides`` uses the file's nested shape (or dotted keys); a top-level ``None`` there means
    "unset" (a flag not given), while a nested ``null`` from ``--set`` still sets a field to null.
    """
    return _resolve(ConfigSource(dict(file_data or {})), overrides)


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> WorldConfig:
    """Load a YAML/JSON config file (``extends:`` allowed) and apply ``overrides``; errors name
    the file and, for YAML, the line of the offending key."""
    with kgworld_errors(ConfigError):
        source = read_config_file(path)
    return _resolve(source, overrides)


def _resolve(source: ConfigSource, overrides: Mapping[str, Any] | None) -> WorldConfig:
    with kgworld_errors(ConfigError):
        flags = nest({k: v for k, v in (overrides or {}).items() if v is not None})
        preset = flags.get("preset", source.data.get("preset"))
        # An unknown preset adds nothing here; WorldConfig's own check then names it.
        data = merge(PRESETS.get(preset, {}) if isinstance(preset, str) else {}, source.data)
        return build_config(WorldConfig, merge(data, flags), source=source)
