"""One way to load a config: dataclass fields (with ``help`` metadata) filled from defaults <
a YAML/JSON file (with ``extends:``) < ``--set a.b=v`` overrides, type-checked, with unknown keys
and bad values reported as ``file:line: field 'a.b': ...`` and a did-you-mean.

``None`` in an override means "unset" (the command-line flag was not given), never "null";
a file may still set a field to ``null``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from mixsd_base._errors import ConfigError, UserError
from mixsd_base._files import read_text
from mixsd_base._registry import suggest

__all__ = [
    "ConfigSource",
    "build_config",
    "config_help",
    "field_help",
    "load_config",
    "merge",
    "nest",
    "parse_overrides",
    "read_config_file",
]

C = TypeVar("C")
Key = tuple[str, ...]


@dataclass
class ConfigSource:
    """A config mapping with the file and line each key came from (``extends:`` resolved)."""

    data: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    origins: dict[Key, tuple[str, int]] = field(default_factory=dict)

    def locate(self, keys: Sequence[str]) -> tuple[str | None, int | None]:
        """(file, line) of the deepest known key on ``keys``; the top file when none is known."""
        keys = tuple(keys)
        for end in range(len(keys), 0, -1):
            if keys[:end] in self.origins:
                return self.origins[keys[:end]]
        return self.path, None

    def error(self, keys: Sequence[str], message: str) -> ConfigError:
        path, line = self.locate(keys)
        return ConfigError(message, path=path, line=line, field=".".join(keys) or None)


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) is replaced by ``top``'s."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1, "c": 2}`` -> ``{"a": {"b": 1}, "c": 2}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, last = str(key).split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key!r} sets a key inside a non-mapping value")
        node[last] = value
    return out


def _parse_value(text: str) -> Any:
    """An override's value as YAML (or JSON when PyYAML is missing; else the text itself)."""
    if not text.strip():
        return None
    try:
        import yaml
    except ImportError:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["train.lr=1e-4", "seed=3"]`` -> ``{"train": {"lr": 1e-4}, "seed": 3}``."""
    flat: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value (e.g. train.learning_rate=1e-5)")
        flat[key.strip()] = _parse_value(text)
    return nest(flat)


def _yaml_origins(text: str, path: str) -> dict[Key, tuple[str, int]]:
    import yaml

    origins: dict[Key, tuple[str, int]] = {}

    def walk(node: Any, keys: Key) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*keys, str(key.value))
                origins[child] = (path, key.start_mark.line + 1)
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = (*keys, str(index))
                origins[child] = (path, item.start_mark.line + 1)
                walk(item, child)

    with contextlib.suppress(yaml.YAMLError):  # the parse itself reports the error
        walk(yaml.compose(text, Loader=yaml.SafeLoader), ())
    return origins


def _parse_file(path: Path) -> tuple[Any, dict[Key, tuple[str, int]]]:
    text = read_text(path, what="config file")
    if path.suffix == ".json":
        try:
            return json.loads(text), {}
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON ({exc.msg})", path=path, line=exc.lineno) from None
    try:
        import yaml
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "reading YAML needs PyYAML (pip install pyyaml); or write the config as JSON",
            path=path,
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"invalid YAML ({problem})", path=path, line=None if mark is None else mark.line + 1
        ) from None
    return data, _yaml_origins(text, str(path))


def read_config_file(path: str | Path, *, _seen: tuple[Path, ...] = ()) -> ConfigSource:
    """Read a YAML or JSON mapping; ``extends: OTHER`` (relative to this file) is read first
    and this file's keys are merged over it."""
    path = Path(path)
    if path.resolve() in _seen:
        raise ConfigError("extends: forms a cycle", path=path)
    data, origins = _parse_file(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("a config file must be a mapping of field: value", path=path)
    source = ConfigSource(data=data, path=str(path), origins=origins)
    if "extends" in data:
        parent_name = data.pop("extends")
        if not isinstance(parent_name, str):
            raise source.error(("extends",), "must be a file name")
        parent_path = path.parent / parent_name
        if not parent_path.is_file():
            raise source.error(("extends",), f"{parent_path} not found")
        parent = read_config_file(parent_path, _seen=(*_seen, path.resolve()))
        source = ConfigSource(
            data=merge(parent.data, data),
            path=str(path),
            origins={**parent.origins, **origins},
        )
    return source


# ---------------------------------------------------------------------------- typed building


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(h) for h in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        return "a list"
    if origin in (dict, Mapping) or hint is dict:
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


class _Mismatch(Exception):
    """The value does not fit the hint; the message says what was expected."""


def _convert(value: Any, hint: Any, keys: Key, source: ConfigSource) -> Any:
    if hint is Any or hint is object:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise _Mismatch(f"expected {_type_name(hint)}, got null")
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option, keys, source)
            except _Mismatch:
                continue
        raise _Mismatch(f"expected {_type_name(hint)}, got {value!r}")
    if origin is Literal:
        if value in args:
            return value
        choices = [str(a) for a in args]
        raise _Mismatch(
            f"{value!r} is not allowed{suggest(str(value), choices)}; choose one of: "
            + ", ".join(choices)
        )
    if is_dataclass(hint) and isinstance(hint, type):
        if isinstance(value, hint):  # a section built beforehand (e.g. by a custom reader)
            return value
        return build_config(hint, value, source=source, prefix=keys)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch(f"expected true/false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch(f"expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-5 as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise _Mismatch(f"expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Mismatch(f"expected a string, got {value!r}")
    if origin in (list, Sequence) or hint is list or origin is tuple or hint is tuple:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise _Mismatch(f"expected a list, got {type(value).__name__}")
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(
                    _checked(v, args[0], (*keys, str(i)), source) for i, v in enumerate(value)
                )
            if args and len(args) != len(value):
                raise _Mismatch(f"expected a list of {len(args)} items, got {len(value)}")
            items = args or (Any,) * len(value)
            return tuple(
                _checked(v, h, (*keys, str(i)), source)
                for i, (v, h) in enumerate(zip(value, items, strict=True))
            )
        item = args[0] if args else Any
        return [_checked(v, item, (*keys, str(i)), source) for i, v in enumerate(value)]
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch(f"expected a mapping, got {type(value).__name__}")
        if len(args) == 2:
            return {k: _checked(v, args[1], (*keys, str(k)), source) for k, v in value.items()}
        return dict(value)
    return value  # any other annotation: the dataclass's own checks decide


def _checked(value: Any, hint: Any, keys: Key, source: ConfigSource) -> Any:
    try:
        return _convert(value, hint, keys, source)
    except _Mismatch as exc:
        raise source.error(keys, str(exc)) from None


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation this Python cannot evaluate: leave checks to the class
        return {}


def build_config(
    cls: type[C],
    data: Any,
    *,
    source: ConfigSource | None = None,
    prefix: Sequence[str] = (),
) -> C:
    """``cls(**data)`` with every key known, every value of its field's type, nested dataclass
    sections built recursively; errors name the file, line and dotted field."""
    source = source or ConfigSource()
    keys = tuple(prefix)
    if not isinstance(data, Mapping):
        raise source.error(keys, f"expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls) if f.init}  # type: ignore[arg-type]
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise source.error((*keys, str(key)), f"unknown key{suggest(str(key), list(known))}")
        f = known[key]
        if "coerce" in f.metadata and value is not None:
            value = f.metadata["coerce"](value)
        hint = hints.get(key, Any)
        kwargs[key] = _checked(value, hint, (*keys, str(key)), source)
    for name, f in known.items():
        if name not in kwargs and f.default is MISSING and f.default_factory is MISSING:
            raise source.error((*keys, name), "required: it has no default")
    try:
        return cls(**kwargs)
    except UserError as exc:
        if exc.path is not None:
            raise
        field_keys = (*keys, *exc.field.split(".")) if exc.field else keys
        path, line = source.locate(field_keys)
        raise type(exc)(
            exc.message, path=path, line=line, field=".".join(field_keys) or None
        ) from None
    except (ValueError, TypeError) as exc:
        raise source.error(keys, str(exc)) from None


def load_config(
    cls: type[C],
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    base: Mapping[str, Any] | None = None,
) -> C:
    """``cls`` from defaults < ``base`` < the file at ``path`` < ``overrides``.

    ``overrides`` may be nested or use dotted keys; a ``None`` there means unset.
    """
    source = read_config_file(path) if path is not None else ConfigSource()
    data = merge(dict(base or {}), source.data)
    data = merge(data, _drop_none(nest(dict(overrides or {}))))
    return build_config(cls, data, source=ConfigSource(data, source.path, source.origins))


def _drop_none(tree: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: _drop_none(v) if isinstance(v, Mapping) else v for k, v in tree.items() if v is not None
    }


def field_help(cls: type) -> dict[str, str]:
    """``{field name: help}`` of a dataclass (for command-line option help)."""
    return {f.name: f.metadata.get("help", "") for f in fields(cls)}


def config_help(cls: type, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, help) for every field, nested dataclass sections flattened."""
    rows: list[tuple[str, Any, str]] = []
    hints = _hints(cls)
    for f in fields(cls):
        key = f"{prefix}{f.name}"
        hint = hints.get(f.name)
        if isinstance(hint, type) and is_dataclass(hint):
            rows.extend(config_help(hint, f"{key}."))
            continue
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = None
        rows.append((key, default, f.metadata.get("help", "")))
    return rows


def as_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain data (for manifests)."""
    return dataclasses.asdict(config)
