"""What a model spec names, decided in one place for every package and command line.

A spec is one of:

* a registry name (``default``, ``qwen2.5-coder-0.5b-instruct``, an alias): its GGUF is converted
  once into a safetensors folder in the cache (``convert_model``), which is what gets loaded;
* a training folder holding ``selection.json`` (``mixsd train select``, ``mixsd run``): the
  checkpoint it selected, so a later stage can start from "the SFT model of run X";
* a local Hugging Face folder (``config.json`` inside);
* a peft LoRA adapter folder (``adapter_config.json`` inside, as LoRA checkpoints are): loaded as
  its base model (``base_model_name_or_path``, itself any spec) with the adapter merged in;
* a ``.gguf`` file (dequantised in memory on every load);
* a hub id (``org/name``), handed to ``from_pretrained`` as is.

A bare name is a registry name even when a folder of that name is in the current directory
(write ``./default`` for the folder).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mixsd_core._model_registry import ModelError, lookup, unknown_model

if TYPE_CHECKING:
    import torch

ADAPTER_CONFIG = "adapter_config.json"  # a peft adapter folder (a LoRA checkpoint)

__all__ = ["DTYPE_WORDS", "MODEL_HELP", "ModelSpec", "parse_dtype", "resolve_model_spec"]

SELECTION = "selection.json"

# The help of every config's model field that this resolver reads.
MODEL_HELP = "Model: registry name, folder, training folder, GGUF file or hub id."

# Every package and command line spells dtypes with these words.
DTYPE_WORDS = {
    "fp32": "float32",
    "float32": "float32",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
    "half": "float16",
}


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model spec: what the user wrote, what kind of thing it names, and ``source``,
    what ``from_pretrained`` gets (a folder, a hub id, or for ``gguf`` the file itself)."""

    spec: str
    kind: Literal["registry", "folder", "gguf", "hub", "training-run", "adapter"]
    source: str


def _looks_like_path(spec: str) -> bool:
    """Anything absolute, relative, a .gguf or with more than one slash must exist locally."""
    return (
        spec.startswith((".", "/", "~"))
        or spec.endswith(".gguf")
        or spec.count("/") > 1
        or (os.sep != "/" and os.sep in spec)
    )


def selected_checkpoint(selection: Path) -> Path:
    """The checkpoint folder a training folder's ``selection.json`` names.

    Paths are written absolute; when the run folder was moved, the checkpoint of the same name
    inside it is used.
    """
    try:
        written = json.loads(selection.read_text(encoding="utf-8"))["checkpoint"]
        checkpoint = Path(written)
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{selection}: cannot read it ({exc})") from None
    except ValueError as exc:
        raise ModelError(f"{selection}: not valid JSON ({exc})") from None
    except (KeyError, TypeError):
        raise ModelError("missing", path=selection, field="checkpoint") from None
    for candidate in (checkpoint, selection.parent / checkpoint.name):
        if (candidate / "config.json").is_file() or (candidate / ADAPTER_CONFIG).is_file():
            return candidate
    raise ModelError(
        f"{written} is not a model folder (nor is {selection.parent / checkpoint.name})",
        path=selection,
        field="checkpoint",
    )


def resolve_model_spec(spec: str | os.PathLike[str]) -> ModelSpec:
    """Decide what ``spec`` names (see the module docstring); a ``ModelError`` if nothing.

    Registry models are converted on first use (tens of seconds, once); nothing else is loaded.
    """
    text = os.fspath(spec)
    path = Path(text).expanduser()
    bare = "/" not in text and os.sep not in text
    entry = lookup(text) if bare else None
    if entry is not None:
        from mixsd_core._models import convert_model

        return ModelSpec(text, "registry", str(convert_model(entry.name)))
    if path.is_file() and path.suffix == ".gguf":
        return ModelSpec(text, "gguf", str(path.resolve()))
    if path.is_dir() and (path / SELECTION).is_file():
        return ModelSpec(text, "training-run", str(selected_checkpoint(path / SELECTION)))
    if path.is_dir() and (path / "config.json").is_file():
        return ModelSpec(text, "folder", str(path))
    if path.is_dir() and (path / ADAPTER_CONFIG).is_file():
        return ModelSpec(text, "adapter", str(path))
    if path.exists():
        hint = ""
        if path.is_dir() and any(path.glob("checkpoint-*")):
            hint = f" (a training folder needs {SELECTION}: run `mixsd train select {path}`)"
        raise ModelError(
            f"{path} is neither a Hugging Face model folder (no config.json) nor a .gguf{hint}"
        )
    if _looks_like_path(text):
        raise ModelError(f"model path {text!r} does not exist")
    if bare:
        raise unknown_model(text)
    # org/name: a hub id. Works online, and offline with a populated Hugging Face cache.
    return ModelSpec(text, "hub", text)


def parse_dtype(
    word: str | torch.dtype | None, device: str | torch.device | None = None
) -> torch.dtype:
    """A torch dtype from one of ``auto``, ``fp32``/``float32``, ``bf16``/``bfloat16``,
    ``fp16``/``float16``/``half`` (or a torch dtype). ``auto`` (and None) means fp32 on CPU,
    where bf16 is slow, and bf16 on CUDA; ``device`` None means CUDA when there is one."""
    import torch

    if isinstance(word, torch.dtype):
        return word
    if word is None or word == "auto":
        if device is None:
            on_cuda = torch.cuda.is_available()
        else:
            on_cuda = torch.device(device).type == "cuda"
        return torch.bfloat16 if on_cuda else torch.float32
    name = DTYPE_WORDS.get(str(word).strip().lower())
    if name is None:
        raise ModelError(f"unknown dtype {word!r} (use auto, fp32, bf16 or fp16)")
    return getattr(torch, name)
