"""The one exception type for user errors (kept free of heavy imports, for a fast CLI)."""

from __future__ import annotations

__all__ = ["TrainError"]


class TrainError(Exception):
    """A user error (bad input, bad config): the CLI prints it as one line and exits 1."""
