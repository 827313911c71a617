"""Registries: a name -> object table with one lookup rule and one did-you-mean for every kind
of thing a user can name (verifiers, models, methods, suites, templates, presets)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from difflib import get_close_matches
from typing import Generic, TypeVar, overload

from mixsd_base._errors import ConfigError

__all__ = ["Registry", "UnknownNameError", "suggest"]

T = TypeVar("T")


class UnknownNameError(ConfigError, KeyError):
    """A name that is not in a registry; the message lists the close matches and the choices."""

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


def suggest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or '' when none is close.

    With no close spelling, a choice that starts with ``name`` (3 characters or more) is the
    suggestion: ``qwen`` -> ``qwen2.5-coder-0.5b-instruct``.
    """
    close = get_close_matches(str(name), list(choices), n=1)
    if not close and len(str(name)) >= 3:
        close = [c for c in choices if c.startswith(str(name))][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


class Registry(Mapping[str, T], Generic[T]):
    """A read-only mapping of names to objects, filled by :meth:`register` at import time.

    ``Registry("verifier")`` names what it holds in its errors: ``unknown verifier 'boxd' (did
    you mean 'boxed'?); choose one of: ...``. Registering a name twice is an error, so two
    modules cannot silently replace each other's entries.
    """

    def __init__(self, kind: str, entries: Mapping[str, T] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        for name, obj in (entries or {}).items():
            self.register(name, obj)

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, obj: T) -> T: ...
    def register(self, name: str, obj: T | None = None) -> T | Callable[[T], T]:
        """Add ``obj`` under ``name`` (or use as a decorator: ``@REG.register("name")``)."""

        def add(item: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = item
            return item

        return add if obj is None else add(obj)

    @contextlib.contextmanager
    def temporary(self, name: str, obj: T) -> Iterator[T]:
        """Register ``obj`` under ``name`` for the length of a ``with`` block (tests: a
        stand-in verifier); the registry is as before afterwards."""
        self.register(name, obj)
        try:
            yield obj
        finally:
            del self._entries[name]

    def get_or_fail(self, name: str, *, field: str | None = None) -> T:
        """The entry called ``name``; an :class:`UnknownNameError` naming the choices otherwise."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            choices = list(self._entries)
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{suggest(name, choices)}; "
                f"choose one of: {', '.join(choices)}",
                field=field,
            ) from None

    def __getitem__(self, name: str) -> T:
        return self.get_or_fail(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"
