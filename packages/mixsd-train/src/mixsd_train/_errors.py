"""The user-error type of mixsd-train (kept free of heavy imports, for a fast CLI)."""

from __future__ import annotations

from mixsd_base import UserError

__all__ = ["TrainError"]


class TrainError(UserError):
    """A bad training or editing input (data, method, output folder, config value): the CLI
    prints it as one line naming file, line and field, and exits 1."""
