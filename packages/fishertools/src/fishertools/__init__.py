"""fishertools: diagonal Fisher diagnostics."""

__version__ = "0.1.0"
