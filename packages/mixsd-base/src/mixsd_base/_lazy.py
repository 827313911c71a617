"""Lazy exports: a package's ``__init__`` names what it exports without importing torch.

``__getattr__, __dir__ = lazy_exports(__name__, {"load_model": "pkg._models"})`` makes
``pkg.load_model`` import ``pkg._models`` on first use only, so ``--help`` and the light parts of
a package stay fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports", "lazy_table"]


def lazy_table(module: str, names: Iterable[str]) -> dict[str, str]:
    """``{name: module}`` for several names that live in the same module."""
    return dict.fromkeys(names, module)


def lazy_exports(
    package: str, table: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` that import ``table[name]`` on first access."""

    def __getattr__(name: str) -> Any:
        if name in table:
            value = getattr(importlib.import_module(table[name]), name)
            setattr(sys.modules[package], name, value)  # cache: later lookups skip this hook
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
