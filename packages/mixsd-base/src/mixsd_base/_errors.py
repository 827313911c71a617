"""One base for every error a user can cause: bad config, bad input file, unknown name.

The command lines print a ``UserError`` as one line and exit 1, never with a traceback. Every
package's own error classes subclass it, so the umbrella CLI catches only this base.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ConfigError", "DataError", "UserError", "where"]


def where(path: str | Path | None = None, line: int | None = None, field: str | None = None) -> str:
    """``file:line: field 'a.b'`` (each part only when known): the prefix of every error line."""
    parts = []
    if path is not None:
        parts.append(f"{path}:{line}" if line is not None else str(path))
    if field:
        parts.append(f"field '{field}'")
    return ": ".join(parts)


class UserError(Exception):
    """A mistake in what the user asked for; its message is one line naming file, line, field.

    ``UserError("must be positive", path="a.yaml", line=3, field="train.lr")`` reads
    ``a.yaml:3: field 'train.lr': must be positive``. The parts stay available as attributes.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        prefix = where(path, line, field)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConfigError(UserError, ValueError):
    """A config file, section or value that cannot be used."""


class DataError(UserError, ValueError):
    """An input data file (JSONL records, rollouts, a table) that cannot be used."""
