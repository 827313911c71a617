"""Config fields declared in one line, with the value checks their metadata names.

``option(8, "Examples decoded together.", min=1)`` is
``field(default=8, metadata={"help": "Examples decoded together.", "min": 1})``, and
``check_fields(self)`` in the dataclass's ``__post_init__`` raises, for ``batch_size=0``,
``ConfigError("must be >= 1, got 0", field="batch_size")``. The checks a field's metadata may name:

* ``required=True``: a false value (``""``, ``[]``) "is required";
* ``min=N``: a number ``>= N``;
* ``interval="(0, 1]"``: a number in that interval (round bracket = open end; ``inf`` allowed);
* ``choices=(...)``, or a function returning them (read when checked): one of those, with a
  did-you-mean.

``None`` is never checked: it means unset (the default, "all", "auto"). Checks that involve two
fields stay in ``__post_init__``, after ``check_fields``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field, fields
from typing import Any

from mixsd_base._errors import ConfigError, UserError
from mixsd_base._registry import suggest

__all__ = ["check_fields", "option"]


def option(default: Any, help: str, **metadata: Any) -> Any:
    """A dataclass field with its default, ``help`` and any other metadata (checks, ``pipeline``).

    For an immutable default; a list or dict field keeps ``field(default_factory=...)``.
    """
    return field(default=default, metadata={"help": help, **metadata})


def check_fields(config: Any, *, error: type[UserError] = ConfigError) -> None:
    """Check every field of ``config`` against its metadata; the first bad one raises ``error``
    (a ``UserError`` subclass) naming the field."""
    for f in fields(config):
        problem = _problem(getattr(config, f.name), f.metadata)
        if problem is not None:
            raise error(problem, field=f.name)


def _problem(value: Any, metadata: Mapping[str, Any]) -> str | None:
    if value is None:
        return None
    if metadata.get("required") and not value:
        return "is required"
    bounded = "min" in metadata or "interval" in metadata
    if bounded and (isinstance(value, bool) or not isinstance(value, int | float)):
        return f"must be a number, got {value!r}"
    if "min" in metadata and not value >= metadata["min"]:  # (NaN fails too)
        return f"must be >= {metadata['min']}, got {value!r}"
    if "interval" in metadata and not _in_interval(value, metadata["interval"]):
        return f"must be in {metadata['interval']}, got {value!r}"
    if "choices" in metadata:
        choices = metadata["choices"]
        allowed = list(choices() if callable(choices) else choices)
        if value not in allowed:
            names = [str(c) for c in allowed]
            return f"must be one of {names}, got {value!r}{suggest(str(value), names)}"
    return None


def _in_interval(value: float, interval: str) -> bool:
    low_text, high_text = interval[1:-1].split(",")
    low, high = float(low_text), float(high_text)
    above_low = value > low if interval[0] == "(" else value >= low
    below_high = value < high if interval[-1] == ")" else value <= high
    return above_low and below_high  # NaN is in no interval: both comparisons are False
