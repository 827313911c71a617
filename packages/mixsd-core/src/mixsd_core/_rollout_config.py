"""Configuration of the rollout stage (``mixsd rollout``), TRL style: one dataclass, help on
every field, validation in ``__post_init__``. It loads like every config of the project, through
``mixsd_base.load_config`` (YAML file with line numbers, ``--set``, unknown keys rejected with a
did-you-mean). Fields marked ``pipeline`` are a stage's inputs and outputs, which ``mixsd run``
fills itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixsd_base import ConfigError, UserError, build_config
from mixsd_core._model_spec import DTYPE_WORDS
from mixsd_core._prompts import EXPERT_TEMPLATES, TASK_TYPES

__all__ = ["AUTO_VERIFIERS", "BACKENDS", "RolloutConfig", "RolloutError"]

AUTO_VERIFIERS = {"kgfact": "boxed-or-final-sentence", "kgfunc": "integer"}
BACKENDS = ("hf", "vllm")


class RolloutError(UserError):
    """A user error of the rollout stage (e.g. output from another run): printed as one line."""


def _verifier_names() -> tuple[str, ...]:
    import kgworld

    return tuple(kgworld.VERIFIERS)


@dataclass
class RolloutConfig:
    """Configuration of ``mixsd rollout``. Every field but ``overwrite`` fingerprints the output."""

    model: str = field(
        default="default",
        metadata={
            "help": "Model: registry name, folder, training folder, GGUF file or hub id.",
            "pipeline": True,
        },
    )
    data: str = field(
        default="",
        metadata={
            "help": "Input JSONL of records (id, prompt, target, answer, ...).",
            "pipeline": True,
        },
    )
    out: str = field(
        default="",
        metadata={
            "help": "Output JSONL; the manifest goes to OUT-stem.manifest.json.",
            "pipeline": True,
        },
    )
    alpha: float = field(
        default=0.5, metadata={"help": "Probability of taking the naive token, in [0, 1]."}
    )
    seed: int = field(
        default=0, metadata={"help": "Seed of the masks (with example id and attempt)."}
    )
    batch_size: int = field(default=8, metadata={"help": "Examples decoded together."})
    chunk_batches: int = field(
        default=8,
        metadata={
            "help": "Batches per resumable chunk: a chunk's failed rows from every batch are "
            "redrawn together, in full batches (1 = each batch retries alone)."
        },
    )
    max_new_tokens: int = field(default=256, metadata={"help": "Longest target, in tokens."})
    max_retries: int = field(
        default=10, metadata={"help": "Redraws after a failed first attempt; then drop."}
    )
    backend: str = field(
        default="hf",
        metadata={
            # No square brackets: the CLI's rich help would read "[vllm]" as markup.
            "help": "Decoding backend: 'hf' (transformers, CPU/GPU) or 'vllm' (needs the vllm "
            "extra of mixsd-core; greedy only, same tokens as 'hf')."
        },
    )
    verifier: str = field(
        default="auto", metadata={"help": "'auto' (by task type) or a kgworld verifier name."}
    )
    no_verify: bool = field(
        default=False, metadata={"help": "Keep every first attempt, unverified."}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "Replace output written with another config."}
    )
    task: str = field(
        default="auto",
        metadata={"help": "Task type: 'auto' (id prefix / meta), 'kgfact', 'kgfunc'."},
    )
    prompt_style: str = field(
        default="clear", metadata={"help": "Expert wording: 'clear' or 'paper'."}
    )
    temperature: float = field(
        default=0.0, metadata={"help": "0 = greedy (the method); > 0 samples."}
    )
    top_p: float = field(default=1.0, metadata={"help": "Nucleus mass when sampling."})
    limit: int | None = field(
        default=None, metadata={"help": "Only the first LIMIT records (None = all)."}
    )
    device: str | None = field(
        default=None,
        metadata={"help": "Torch device (None = cuda if available, else cpu); hf backend only."},
    )
    dtype: str | None = field(
        default=None,
        metadata={"help": "auto, fp32, bf16 or fp16 (None = auto: fp32 on CPU, bf16 on GPU)."},
    )

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> None:
            # The field's name leads the message: load_config adds the file it came from.
            raise ConfigError(f"{name} {why}, got {getattr(self, name)!r}")

        if not self.data:
            bad("data", "is required")
        if not self.out:
            bad("out", "is required")
        if isinstance(self.alpha, bool) or not 0.0 <= self.alpha <= 1.0:
            bad("alpha", "must be in [0, 1]")
        for name in ("batch_size", "chunk_batches", "max_new_tokens"):
            if getattr(self, name) < 1:
                bad(name, "must be >= 1")
        if self.max_retries < 0:
            bad("max_retries", "must be >= 0")
        if self.limit is not None and self.limit < 0:
            bad("limit", "must be >= 0")
        if self.backend not in BACKENDS:
            bad("backend", f"must be one of {list(BACKENDS)}")
        if self.verifier not in ("auto", *_verifier_names()):
            bad("verifier", f"must be 'auto' or one of {list(_verifier_names())}")
        if self.task not in ("auto", *TASK_TYPES):
            bad("task", f"must be 'auto' or one of {list(TASK_TYPES)}")
        if self.prompt_style not in EXPERT_TEMPLATES:
            bad("prompt_style", f"must be one of {sorted(EXPERT_TEMPLATES)}")
        if self.dtype is not None and self.dtype not in ("auto", *DTYPE_WORDS):
            bad("dtype", f"must be auto or one of {sorted(DTYPE_WORDS)}")
        if self.temperature < 0:
            bad("temperature", "must be >= 0")
        if not 0.0 < self.top_p <= 1.0:
            bad("top_p", "must be in (0, 1]")
        if self.backend == "vllm":
            # Sampling could not reproduce the HF backend's per-row random streams.
            if self.temperature != 0:
                bad("temperature", "must be 0 with backend 'vllm' (greedy only)")
            # vLLM's platform comes from its install; pick GPUs with CUDA_VISIBLE_DEVICES.
            if self.device is not None:
                bad("device", "must be unset with backend 'vllm' (use CUDA_VISIBLE_DEVICES)")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RolloutConfig:
        """Build from a mapping (e.g. a run config's section), checked like a config file."""
        return build_config(cls, values)

    @property
    def manifest_path(self) -> Path:
        out = Path(self.out)
        return out.with_name(f"{out.stem}.manifest.json")

    @property
    def partial_path(self) -> Path:
        return Path(self.out).with_name(Path(self.out).name + ".partial")
