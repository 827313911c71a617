"""Sub-apps that need wiring between packages before the umbrella can mount them."""

from __future__ import annotations

from fishertools.cli import make_app


def _model_source(spec: str) -> str:
    """What a model spec loads from (mixsd_core resolves every kind of spec, once)."""
    from mixsd_core import resolve_model_spec

    return resolve_model_spec(spec).source


fisher_app = make_app(resolve=_model_source)
