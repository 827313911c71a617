"""The one error type forgetbench raises for bad input; the CLI prints it as one line."""

from __future__ import annotations

from mixsd_base import UserError

__all__ = ["EvalError"]


class EvalError(UserError):
    """Bad input or an unavailable resource: the message names the file, line and field."""
