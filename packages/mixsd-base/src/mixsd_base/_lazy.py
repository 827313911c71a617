"""Lazy exports: a package's ``__init__`` names what it exports without importing torch.

``__getattr__, __dir__ = lazy_exports(__name__, {"load_model": "pkg._models"})`` makes
``pkg.load_model`` import ``pkg._models`` on first use only, so ``--help`` and the light parts of
a package stay fast. ``lazy_table("pkg._models")`` exports every name of the module's
``__all__``, read from its source, so the names are listed once, in the module.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["lazy_exports", "lazy_table", "module_all"]


def module_all(module: str) -> list[str]:
    """The names of ``module``'s literal ``__all__``, read from its source without running it
    (importing it is what a lazy export defers)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise ImportError(f"no Python source for {module!r} to read __all__ from")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"), spec.origin)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise ImportError(f"{module} has no literal __all__ to export")


def lazy_table(module: str, names: Iterable[str] | None = None) -> dict[str, str]:
    """``{name: module}`` for several names that live in the same module; without ``names``,
    every name of the module's ``__all__`` (:func:`module_all`)."""
    return dict.fromkeys(module_all(module) if names is None else names, module)


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
