"""Sub-apps that need wiring between packages before the umbrella can mount them."""

from __future__ import annotations

from pathlib import Path

from fishertools.cli import make_app


def model_folder(spec: str) -> str | Path:
    """A registry name (``default``, ...) becomes its converted safetensors folder; any other
    spec (a local folder, a hub id) is passed through unchanged."""
    from mixsd_core import MODEL_REGISTRY, convert_model

    return convert_model(spec) if spec in MODEL_REGISTRY else spec


fisher_app = make_app(resolve=model_folder)
