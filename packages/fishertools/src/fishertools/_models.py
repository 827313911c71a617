"""Loading base models and checkpoints (full folders or LoRA adapters), and picking parameters.

A model spec means what it means everywhere in MixSD: mixsd_core resolves it (registry names such
as ``default``, training folders with ``selection.json``, Hugging Face folders, ``.gguf`` files,
hub ids; safetensors only, no remote code) and parses the dtype word.
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


def load_model(spec: str | Path, *, dtype: str = "float32", device: str | None = None) -> Any:
    """A causal LM from any model spec (mixsd_core.load_model), in eval mode, eager attention;
    ``device`` None is cuda when there is one, else cpu.

    Eager attention is plain matmuls, which vmap batches natively; SDPA on CPU has no batching
    rule and would silently run per sample. The numbers are the same either way.
    """
    from mixsd_core import load_model as load_spec

    model, _ = load_spec(spec, dtype=dtype, device=device)
    model.set_attn_implementation("eager")
    return model.eval()


def load_tokenizer(spec: str | Path | Any) -> Any:
    """The tokenizer of a model spec; for a loaded model, of its ``name_or_path``."""
    from transformers import AutoTokenizer

    from mixsd_core import resolve_model_spec

    if not isinstance(spec, str | Path):
        spec = getattr(spec, "name_or_path", "") or ""
        if not spec:
            raise FisherError("the model has no name_or_path: pass tokenizer= explicitly")
    source = resolve_model_spec(spec).source
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
        # The base's device and dtype: an 8B checkpoint in fp32 beside a bf16 base would not fit
        # one GPU; Δθ is taken in fp32 from the two (exact for bf16 weights).
        weight = next(base.parameters())
        dtype = str(weight.dtype).removeprefix("torch.")
        return load_model(path, dtype=dtype, device=str(weight.device)), "full"
    raise FisherError(
        f"not a checkpoint (no config.json or adapter_config.json): {path.absolute()}"
    )
