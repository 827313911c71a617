"""Sub-apps that need wiring between packages before the umbrella can mount them."""

from __future__ import annotations

from pathlib import Path

from fishertools.cli import make_app


def model_folder(spec: str) -> str | Path:
    """A registry name (``default``, ...) becomes its converted safetensors folder; a training
    folder with a ``selection.json`` (``mixsd run``, ``mixsd train select``) becomes the checkpoint
    it selected, so a later stage can start from "the SFT model of run X"; any other spec (a
    local folder, a hub id) is passed through unchanged."""
    import json

    from mixsd_core import MODEL_REGISTRY, convert_model

    if spec in MODEL_REGISTRY:
        return convert_model(spec)
    selection = Path(spec).expanduser() / "selection.json"
    if not selection.is_file():
        return spec
    try:
        checkpoint = Path(json.loads(selection.read_text(encoding="utf-8"))["checkpoint"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{selection}: no 'checkpoint' field ({exc})") from None
    # Paths are written absolute; a run folder that was moved still holds the checkpoint.
    for candidate in (checkpoint, selection.parent / checkpoint.name):
        if (candidate / "config.json").is_file():
            return candidate
    raise ValueError(f"{selection}: field 'checkpoint': {checkpoint} is not a model folder")


fisher_app = make_app(resolve=model_folder)
