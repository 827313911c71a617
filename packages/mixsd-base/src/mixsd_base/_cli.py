"""One command-line runner and one way to turn a config dataclass into command-line options.

* :func:`run_cli` is every console script's ``main``: a :class:`UserError` prints one line
  (``error: file:line: field 'x': ...``) and exits 1, never a traceback; ``MIXSD_DEBUG=1``
  shows the traceback instead.
* :func:`config_command` makes a Typer command take ``--config FILE``, ``--set key=value``
  (repeatable) and one ``--flag`` per scalar field of a dataclass (help from its metadata), and
  hands the command the loaded, checked config: defaults < file < ``--set`` < flags.

Typer is imported only here, inside the functions, so the base package needs nothing installed.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from mixsd_base._config import _hints, load_config, parse_overrides
from mixsd_base._errors import UserError

__all__ = ["DEBUG_ENV", "config_command", "list_fields", "run_cli", "scalar_fields"]

DEBUG_ENV = "MIXSD_DEBUG"
R = TypeVar("R")


def report_user_error(error: UserError) -> None:
    """Print a user error as the one line every command prints (stderr)."""
    print(f"error: {error}", file=sys.stderr)


def run_cli(app: Callable[[], Any]) -> None:
    """Run a Typer app (or any callable) as a console script with the shared error policy."""
    try:
        app()
    except UserError as error:
        if os.environ.get(DEBUG_ENV):
            raise
        report_user_error(error)
        raise SystemExit(1) from None


_SCALARS = (bool, int, float, str, Path)


def _scalar(hint: Any) -> Any | None:
    """The command-line type of a field (``int``, ``str``, ...), or None when it has none."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _scalar(options[0]) if len(options) == 1 else None
    if origin is Literal:
        return str if all(isinstance(a, str) for a in typing.get_args(hint)) else None
    return hint if hint in _SCALARS else None


def _list_item(hint: Any) -> Any | None:
    """The item type of a ``list[int]`` / ``list[str]`` ... field, or None for anything else."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _list_item(options[0]) if len(options) == 1 else None
    if origin is not list:
        return None
    args = typing.get_args(hint)
    item = _scalar(args[0]) if args else None
    return item if item is not bool else None


def list_fields(cls: type) -> list[tuple[str, Any, str]]:
    """(name, item type, help) of the list-of-scalar fields (a repeatable ``--flag`` each with
    ``config_command(..., lists=True)``); ``metadata={"cli": False}`` leaves one out."""
    return _flag_fields(cls, _list_item)


def scalar_fields(cls: type) -> list[tuple[str, Any, str]]:
    """(name, command-line type, help) of the fields that get their own ``--flag``.

    Fields with ``metadata={"cli": False}`` are left to ``--config`` / ``--set``, as are lists,
    mappings and nested sections.
    """
    return _flag_fields(cls, _scalar)


def _flag_fields(cls: type, flag_type: Callable[[Any], Any | None]) -> list[tuple[str, Any, str]]:
    """(name, flag_type(field's hint), help) of the fields whose hint has a flag type."""
    hints = _hints(cls)
    rows = []
    for f in fields(cls):
        if not f.init or f.metadata.get("cli", True) is False:
            continue
        kind = flag_type(hints.get(f.name))
        if kind is not None:
            rows.append((f.name, kind, f.metadata.get("help", "")))
    return rows


def _default_text(f: Any) -> str:
    if f.default is MISSING:
        return ""
    return f" [default: {f.default}]" if f.default not in (None, "") else ""


def _plain_help(text: str) -> str:
    """Field help is plain text: keep Typer's rich markup from eating ``[k k^T]`` or
    ``[default: 4]`` in it."""
    try:
        from rich.markup import escape
    except ImportError:  # without rich, Typer prints help as it is
        return text
    return escape(text)


def _option_param(name: str, kind: Any, option: Any) -> inspect.Parameter:
    """A keyword-only command parameter that Typer reads as ``option``; None when not given."""
    option.show_default = False
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[kind | None, option],
    )


def config_command(
    cls: type | None,
    *,
    flags: bool = True,
    lists: bool = False,
    exclude: tuple[str, ...] = (),
    rename: dict[str, str] | None = None,
    aliases: dict[str, tuple[str, ...]] | None = None,
    choose: Callable[[dict[str, Any]], type] | None = None,
    param_fields: dict[str, str] | None = None,
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Decorate ``def command(config: cls, **other_params)`` into a Typer command function.

    The wrapper's parameters are the command's own (minus ``config``), then ``--config``,
    ``--set`` and one flag per scalar field of ``cls`` (unless ``flags`` is False or the field
    is in ``exclude``); with ``lists`` also one repeatable flag per list-of-scalar field
    (``--tag a --tag b``; given at all, it replaces the whole list). ``rename`` maps a field to
    another flag name (``{"data": "input"}``), ``aliases`` a field to extra flag spellings
    (``{"suites": ("--suite",)}``).

    ``choose`` picks the config class at call time from the command's own parameters
    (``{"method": "sft", ...}`` -> ``SFTConfig``), for commands whose class depends on an
    option; ``cls`` then only supplies the flags, and may be None (no flags) when importing a
    class is too slow for ``--help``. ``param_fields`` names own parameters that also set a
    field when given (``{"out": "output_dir"}``); like flags, they win over ``--set``.
    """
    import typer

    if cls is None and choose is None:
        raise TypeError("config_command needs a class or a choose function")
    rename = rename or {}
    aliases = aliases or {}
    param_fields = param_fields or {}
    by_name = {f.name: f for f in fields(cls)} if cls is not None else {}
    flag_fields: list[tuple[str, Any, str]] = []
    if flags and cls is not None:
        flag_fields = [row for row in scalar_fields(cls) if row[0] not in exclude]
        if lists:
            flag_fields += [
                (name, list[item], help_text)  # type: ignore[valid-type]
                for name, item, help_text in list_fields(cls)
                if name not in exclude
            ]

    def decorate(func: Callable[..., R]) -> Callable[..., R]:
        own_hints = typing.get_type_hints(func, include_extras=True)
        # Resolved annotations: under `from __future__ import annotations` they are strings,
        # which Typer cannot read its Option/Argument settings from through __signature__.
        own = [
            p.replace(annotation=own_hints.get(name, p.annotation))
            for name, p in inspect.signature(func).parameters.items()
            if name != "config"
        ]
        taken = {p.name for p in own}
        params = list(own)
        annotations = {p.name: own_hints[p.name] for p in own if p.name in own_hints}
        config_help = f"YAML/JSON file of {cls.__name__ if cls else 'config'} fields."
        params.append(
            _option_param("config_file", Path, typer.Option("--config", "-c", help=config_help))
        )
        set_help = "Override one field: key=value (YAML value; repeatable; a.b for nested)."
        params.append(_option_param("set_items", list[str], typer.Option("--set", help=set_help)))
        flag_params: dict[str, str] = {}
        for name, kind, help_text in flag_fields:
            param = rename.get(name, name)
            if param in taken:
                continue
            flag_params[param] = name
            spelled = param.replace("_", "-")
            option = (
                typer.Option(f"--{spelled}/--no-{spelled}", *aliases.get(name, ()))
                if kind is bool
                else typer.Option(f"--{spelled}", *aliases.get(name, ()))
            )
            option.help = _plain_help(help_text + _default_text(by_name[name]))
            params.append(_option_param(param, kind, option))
        for p in params[len(own) :]:
            annotations[p.name] = p.annotation

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> R:
            config_file = kwargs.pop("config_file", None)
            overrides = parse_overrides(kwargs.pop("set_items", None) or [])
            for param, name in flag_params.items():
                value = kwargs.pop(param, None)
                if value is not None and value != []:  # a list flag not given is []
                    overrides[name] = list(value) if isinstance(value, list | tuple) else value
            for param, name in param_fields.items():
                if kwargs.get(param) is not None:
                    overrides[name] = kwargs[param]
            target = choose(dict(kwargs)) if choose is not None else cls
            if target is None:
                raise TypeError("config_command needs cls or choose")
            config: Any = load_config(target, config_file, overrides)
            return func(*args, config=config, **kwargs)

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = annotations
        del command.__wrapped__  # Typer must read the new signature, not the original's
        return command

    return decorate
