"""Config files for world generation: YAML or JSON read into the dict ``resolve_config`` takes;
errors name the file and, for YAML, the line of the offending key."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

from kgworld._config import ConfigError, WorldConfig, resolve_config

__all__ = ["load_config", "read_config_file"]


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (needs PyYAML, the ``kgworld[yaml]`` extra) or JSON config into a dict."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from exc
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from exc
    else:
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigError(
                f"{path}: reading YAML needs PyYAML (pip install 'kgworld[yaml]'); "
                "or write the config as JSON"
            ) from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}{line}: invalid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping at the top level")
    return data


def _yaml_key_lines(text: str) -> dict[str, int]:
    """Dotted key -> 1-based line of that key in a YAML text (empty when it cannot parse)."""
    import yaml

    lines: dict[str, int] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                dotted = f"{prefix}{key.value}"
                lines[dotted] = key.start_mark.line + 1
                walk(value, f"{dotted}.")

    with contextlib.suppress(yaml.YAMLError):
        walk(yaml.compose(text), "")
    return lines


def _error_line(message: str, key_lines: dict[str, int]) -> int | None:
    """The line of the deepest config key that a ConfigError message names."""
    match = re.match(r"(?:unknown key )?([A-Za-z_][\w.]*)", message)
    if match is None:
        return None
    parts = match.group(1).split(".")
    for end in range(len(parts), 0, -1):
        line = key_lines.get(".".join(parts[:end]))
        if line is not None:
            return line
    return None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> WorldConfig:
    """Load a config file and apply ``overrides``; errors name the file and, for YAML, the line."""
    data = read_config_file(path)
    try:
        return resolve_config(data, overrides)
    except ConfigError as exc:
        line = None
        if Path(path).suffix != ".json":
            line = _error_line(str(exc), _yaml_key_lines(Path(path).read_text(encoding="utf-8")))
        where = f"{path}:{line}" if line is not None else f"{path}"
        raise ConfigError(f"{where}: {exc}") from exc
