"""Config fields that the training and the editing configs declare alike (one wording)."""

from __future__ import annotations

from dataclasses import field
from typing import Any

__all__ = ["MODEL_HELP", "model_field"]

MODEL_HELP = (
    "Model spec for mixsd_core.load_model: 'default', a folder, a training folder with "
    "selection.json, a GGUF or a hub id."
)


def model_field() -> Any:
    # "pipeline": mixsd run fills it (the run's base model), so a run config may not set it.
    return field(default="default", metadata={"help": MODEL_HELP, "pipeline": True})
