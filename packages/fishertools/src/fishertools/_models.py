"""Loading base models and checkpoints (full folders or LoRA adapters), and picking parameters.

Model specs are local Hugging Face folders, or hub ids through the normal ``from_pretrained``
path (safetensors only, no remote code). Registry names such as ``default`` are resolved by the
umbrella CLI, which passes a folder or a loaded model.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from pathlib import Path
from typing import Any

import torch

from fishertools._config import FisherError

__all__ = [
    "is_checkpoint_dir",
    "load_checkpoint",
    "load_model",
    "load_tokenizer",
    "select_parameters",
]


def _dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def _looks_like_hub_id(spec: str) -> bool:
    # "org/name" with no local meaning: anything absolute, relative (./, ../) or with more
    # than one slash is treated as a path and must exist.
    return not spec.startswith((".", "/", "~")) and spec.count("/") == 1 and not Path(spec).exists()


def _source(spec: str | Path) -> str:
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise FisherError(f"not a model folder: {path.absolute()}")
        return str(path)
    if isinstance(spec, str) and _looks_like_hub_id(spec):
        return spec
    raise FisherError(f"model folder not found: {path.absolute()}")


def load_model(spec: str | Path, *, dtype: str = "float32", device: str = "cpu") -> Any:
    """A causal LM from a folder or hub id, in eval mode, with eager attention.

    Eager attention is plain matmuls, which vmap batches natively; SDPA on CPU has no batching
    rule and would silently run per sample. The numbers are the same either way.
    """
    from transformers import AutoModelForCausalLM

    source = _source(spec)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=_dtype(dtype), use_safetensors=True, attn_implementation="eager"
        )
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FisherError(f"cannot load model {source}: {first}") from None
    return model.to(device).eval()


def load_tokenizer(spec: str | Path | Any) -> Any:
    """The tokenizer of a model spec; for a loaded model, of its ``name_or_path``."""
    from transformers import AutoTokenizer

    if not isinstance(spec, str | Path):
        spec = getattr(spec, "name_or_path", "") or ""
        if not spec:
            raise FisherError("the model has no name_or_path: pass tokenizer= explicitly")
    source = _source(spec)
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise FisherError(f"cannot load the tokenizer of {source}: {exc}") from None


def _matches(name: str, pattern: str) -> bool:
    if pattern.startswith("re:"):
        return re.search(pattern[3:], name) is not None
    return fnmatch.fnmatchcase(name, pattern)


def select_parameters(
    model: torch.nn.Module, include: list[str] | None = None, exclude: list[str] | None = None
) -> list[str]:
    """Names of the parameters kept by the patterns, in ``named_parameters`` order.

    ``named_parameters`` lists a tied weight once (SmolLM2: ``model.embed_tokens.weight`` also
    serves as ``lm_head.weight``); its gradient then sums both uses, as in training.
    """
    names = [name for name, _ in model.named_parameters()]
    kept = [n for n in names if not include or any(_matches(n, p) for p in include)]
    kept = [n for n in kept if not any(_matches(n, p) for p in exclude or [])]
    if not kept:
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise FisherError(
            f"no parameter matches include={include or []} exclude={exclude or []} "
            f"(names look like: {shown})"
        )
    return kept


def is_checkpoint_dir(path: Path) -> bool:
    """A full model folder (config.json) or a peft adapter folder (adapter_config.json)."""
    return (path / "config.json").is_file() or (path / "adapter_config.json").is_file()


def load_checkpoint(path: Path, base: torch.nn.Module) -> tuple[torch.nn.Module, str]:
    """A checkpoint as a model on the base's device, and its kind ("full" or "lora").

    A LoRA adapter is merged into a copy of ``base`` (the base given to compare, not the one named
    in adapter_config.json), so Δθ = merged − base is exactly the low-rank update.
    """
    path = Path(path)
    if not path.is_dir():
        raise FisherError(f"checkpoint folder not found: {path.absolute()}")
    if (path / "adapter_config.json").is_file():
        from peft import PeftModel

        # The copy costs one model in memory; peft injects its layers in place.
        try:
            merged = PeftModel.from_pretrained(copy.deepcopy(base), str(path)).merge_and_unload()
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise FisherError(f"cannot merge LoRA adapter {path}: {exc}") from None
        return merged.eval(), "lora"
    if (path / "config.json").is_file():
        device = next(base.parameters()).device
        return load_model(path, dtype="float32", device=str(device)), "full"
    raise FisherError(
        f"not a checkpoint (no config.json or adapter_config.json): {path.absolute()}"
    )
