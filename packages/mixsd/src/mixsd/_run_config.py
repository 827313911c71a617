"""The config of ``mixsd run``: one YAML file naming the model, the world, the methods to compare,
the evaluation, the Fisher analysis and the report.

Each stage section is passed to that stage's own config class (``RolloutConfig``, the trainers'
``TrainConfig``, ``EvalConfig``, ``FisherConfig``/``CompareConfig``), so every option those stages
know works here with the same name, and an unknown key is an error naming the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["METHOD_NAMES", "MethodSpec", "RunConfig", "RunError", "load_run_config"]

# The methods a run can compare; "base" is the untrained model (evaluated, never trained).
METHOD_NAMES = ("base", "sft", "mixsd", "mixsd-kl", "opsd", "opsd-nll", "memit")
ROLLOUT_METHODS = ("mixsd", "mixsd-kl")  # trained on mixed rollouts at an alpha


class RunError(Exception):
    """A bad run config or run folder: the CLI prints it as one line."""


@dataclass
class MethodSpec:
    """One method of the comparison."""

    method: str = field(metadata={"help": f"One of {', '.join(METHOD_NAMES)}."})
    alpha: float | None = field(
        default=None, metadata={"help": "Mixing probability (mixsd, mixsd-kl only)."}
    )
    name: str | None = field(
        default=None, metadata={"help": "Folder / table name (default: method, -aALPHA)."}
    )
    train: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "Trainer options for this method only."}
    )

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"{self.method}-a{self.alpha:g}" if self.alpha is not None else self.method


@dataclass
class RunConfig:
    """Everything ``mixsd run`` does, from the world to the report."""

    out: str = field(metadata={"help": "Run folder: one subfolder per stage."})
    model: str = field(
        default="default", metadata={"help": "Base model: registry name, folder, hub id or GGUF."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of rollouts, training and evaluation."})
    world: dict[str, Any] = field(
        default_factory=lambda: {"preset": "small"},
        metadata={
            "help": "kgworld config (preset, seed, kgfact, kgfunc, ...), or {path: FOLDER} "
            "to use a world generated before."
        },
    )
    data: dict[str, Any] = field(
        default_factory=lambda: {"split": "kgfact/train", "limit": None},
        metadata={
            "help": "Training records: split (of the world) and limit (the first N facts; "
            "the in-domain evaluation keeps only questions about those facts); for KGFact, "
            "indomain lists the question splits evaluated besides train (default: all)."
        },
    )
    methods: list[MethodSpec] = field(
        default_factory=list, metadata={"help": "The methods to compare (base is always run)."}
    )
    rollout: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "RolloutConfig options (mixsd rollout)."}
    )
    train: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "Trainer options for every method (a 'config' key names a YAML file)."},
    )
    select: str = field(
        default="auto", metadata={"help": "Checkpoint rule: auto, first-peak, converged, last."}
    )
    nll: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "NLLConfig options (mixsd nll of the targets)."}
    )
    eval: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "EvalConfig options (mixsd eval)."}
    )
    fisher: dict[str, Any] | None = field(
        default_factory=dict,
        metadata={"help": "FisherConfig + CompareConfig options; null skips the Fisher stage."},
    )
    report: bool = field(default=True, metadata={"help": "Write report.md and the plots."})
    source: str = field(default="", metadata={"help": "The YAML file this came from."})
    lines: dict[tuple[str, ...], int] = field(
        default_factory=dict, repr=False, metadata={"help": "Line of each key in the YAML file."}
    )

    def __post_init__(self) -> None:
        if not self.methods:
            raise RunError("methods: name at least one method to compare")
        labels = [m.label for m in self.methods]
        dupes = sorted({n for n in labels if labels.count(n) > 1})
        if dupes:
            raise RunError(f"methods: the names {dupes} appear twice; give each a 'name'")

    @property
    def trained(self) -> list[MethodSpec]:
        return [m for m in self.methods if m.method != "base"]

    def where(self, *keys: str) -> str:
        """``file:line: field 'a.b'`` for error messages about a key of this config."""
        return _where(Path(self.source or "<config>"), self.lines, keys)

    def rollout_alphas(self) -> list[float]:
        alphas = {m.alpha for m in self.methods if m.method in ROLLOUT_METHODS}
        return sorted(a for a in alphas if a is not None)


def _line_map(text: str) -> dict[tuple[str, ...], int]:
    """Line (1-based) of every mapping key, by its path of keys / list indices."""
    import yaml

    lines: dict[tuple[str, ...], int] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value))
                lines[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[(*path, str(index))] = item.start_mark.line + 1
                walk(item, (*path, str(index)))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return lines


def _where(path: Path, lines: dict[tuple[str, ...], int], keys: tuple[str, ...]) -> str:
    line = lines.get(keys)
    field_name = ".".join(keys)
    return f"{path}:{line}: field '{field_name}'" if line else f"{path}: field '{field_name}'"


def _unknown(cls: type, values: dict[str, Any]) -> list[str]:
    known = {f.name for f in fields(cls)}
    return [k for k in values if k not in known]


def _method(raw: Any, index: int, path: Path, lines: dict) -> MethodSpec:
    keys = ("methods", str(index))
    if isinstance(raw, str):  # "sft", or "mixsd@0.5"
        name, _, alpha = raw.partition("@")
        raw = {"method": name, **({"alpha": float(alpha)} if alpha else {})}
    if not isinstance(raw, dict):
        raise RunError(f"{_where(path, lines, keys)}: a method is a name or a mapping")
    for key in _unknown(MethodSpec, raw):
        raise RunError(f"{_where(path, lines, (*keys, key))}: unknown method option")
    if raw.get("method") not in METHOD_NAMES:
        raise RunError(
            f"{_where(path, lines, (*keys, 'method'))}: must be one of {', '.join(METHOD_NAMES)}"
        )
    alpha = raw.get("alpha")
    if raw["method"] in ROLLOUT_METHODS:
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1:
            raise RunError(f"{_where(path, lines, (*keys, 'alpha'))}: needs an alpha in [0, 1]")
    elif alpha is not None:
        raise RunError(f"{_where(path, lines, (*keys, 'alpha'))}: only mixsd methods take alpha")
    name = raw.get("name")
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", str(name)):
        raise RunError(f"{_where(path, lines, (*keys, 'name'))}: use letters, digits, . _ -")
    if not isinstance(raw.get("train", {}), dict):
        raise RunError(f"{_where(path, lines, (*keys, 'train'))}: must be a mapping")
    return MethodSpec(
        method=raw["method"],
        alpha=None if alpha is None else float(alpha),
        name=name,
        train=dict(raw.get("train") or {}),
    )


def _raw_mapping(path: Path) -> dict[str, Any]:
    import yaml

    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if "extends" in raw:
        raw = _merge(_raw_mapping(path.parent / str(raw.pop("extends"))), raw)
    return raw


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) is replaced by ``top``'s."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_run_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read and check a run config; errors name the file, line and field."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: run config not found")
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
        lines = _line_map(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise RunError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise RunError(f"{path}: a run config is a mapping of field: value")
    if "extends" in raw:  # a shared base file, relative to this one; this file's keys win
        parent = path.parent / str(raw.pop("extends"))
        if not parent.is_file():
            raise RunError(f"{_where(path, lines, ('extends',))}: {parent} not found")
        raw = _merge(_raw_mapping(parent), raw)
    raw.update(overrides or {})
    for key in _unknown(RunConfig, raw):
        from difflib import get_close_matches

        close = get_close_matches(key, [f.name for f in fields(RunConfig)], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise RunError(f"{_where(path, lines, (key,))}: unknown run option{hint}")
    if "out" not in raw:
        raise RunError(f"{path}: field 'out' (the run folder) is required")
    for key in ("world", "data", "rollout", "train", "nll", "eval"):
        if key in raw and not isinstance(raw[key], dict):
            raise RunError(f"{_where(path, lines, (key,))}: must be a mapping")
    if raw.get("fisher") is not None and not isinstance(raw["fisher"], dict):
        raise RunError(f"{_where(path, lines, ('fisher',))}: must be a mapping or null")
    if not isinstance(raw.get("methods"), list):
        raise RunError(f"{_where(path, lines, ('methods',))}: must be a list of methods")
    raw["methods"] = [_method(m, i, path, lines) for i, m in enumerate(raw["methods"])]
    for key in ("source", "lines"):
        if key in raw:
            raise RunError(f"{_where(path, lines, (key,))}: unknown run option")
    try:
        return RunConfig(**raw, source=str(path), lines=lines)
    except TypeError as exc:
        raise RunError(f"{path}: {exc}") from None
