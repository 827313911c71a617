"""Held-out decoding protocols: how each lm-eval task decodes, and how many samples it scores.

* ``greedy`` (the default): every task as its YAML says (greedy, one sample; ``fb_aime24_paper``
  keeps its fixed 16 samples at T = 1.0) with ``max_new_tokens`` new tokens. Deterministic.
* ``paper``: the authors' capability evaluation (FACTS §5). The model family decides: Qwen
  models are sampled (T = ``temperature``, 1.0; top_p 1, top_k and min_p off) with
  ``samples[task]`` samples per problem (AIME-2024: 16; every other task 1) and the score is the
  mean over all samples; Llama models decode greedily, one sample. MMLU's budget is 1024 new
  tokens, every other task's ``max_new_tokens`` (the paper: 16384).
* ``sampled``: ``paper`` with the Qwen decoding for any model family.

The family is the model's ``config.json`` ``model_type`` (``qwen2``, ``qwen3``, ``qwen3_moe``:
Qwen; ``llama``: Llama, which SmolLM2 also is). ``paper`` stops on any other family. Sampling
draws from torch's generator, which lm-eval seeds with the run's ``seed`` before each call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from forgetbench._errors import EvalError

__all__ = ["PAPER_SAMPLES", "PROTOCOLS", "HeldoutProtocol", "decoding_record", "resolve_protocol"]

PROTOCOLS = ("greedy", "paper", "sampled")

# FACTS §5: AIME-2024 draws 16 samples per problem, every other benchmark one.
PAPER_SAMPLES: Mapping[str, int] = {"fb_aime24": 16}
# FACTS §5: 16384 new tokens by default, 1024 for MMLU.
PAPER_MAX_NEW_TOKENS: Mapping[str, int] = {"fb_mmlu": 1024}
# The authors' vLLM sampling (top_p 1.0, top_k -1, min_p 0) as HF generate arguments: top_k 0 is
# HF's "off". Stated explicitly because HF otherwise takes them from the model's
# generation_config.json (Qwen3-1.7B ships top_k 20, top_p 0.95; Qwen2.5 a repetition penalty).
_SAMPLED = {"do_sample": True, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0}
_GREEDY = {"do_sample": False, "repetition_penalty": 1.0}
# model_type prefix -> the paper's decoding for that family.
FAMILY_DECODING = {"qwen": "sampled", "llama": "greedy"}


def family_decoding(model_type: str | None) -> str:
    """``"sampled"`` (Qwen) or ``"greedy"`` (Llama) for a ``config.json`` ``model_type``."""
    for prefix, decoding in FAMILY_DECODING.items():
        if model_type and model_type.lower().startswith(prefix):
            return decoding
    raise EvalError(
        f"'paper' decodes Qwen models sampled and Llama models greedily (FACTS §5); this model's "
        f"model_type is {model_type!r}: choose 'greedy' or 'sampled'",
        field="protocol",
    )


@dataclass(frozen=True)
class HeldoutProtocol:
    """One run's resolved held-out decoding: what each task is told, and the record of it."""

    name: str = "greedy"  # as configured: greedy, paper, sampled
    decoding: str = "greedy"  # what runs: greedy or sampled
    model_type: str | None = None
    temperature: float = 1.0
    samples: Mapping[str, int] = field(default_factory=lambda: dict(PAPER_SAMPLES))

    def overrides(self, task: str, max_new_tokens: int) -> tuple[dict[str, Any], int | None]:
        """``(generation kwargs to merge into the task's, repeats or None = the YAML's)``."""
        if self.name == "greedy":  # exactly what forgetbench passed before protocols existed
            return {"max_gen_toks": max_new_tokens}, None
        budget = min(max_new_tokens, PAPER_MAX_NEW_TOKENS.get(task, max_new_tokens))
        if self.decoding == "greedy":
            return {**_GREEDY, "max_gen_toks": budget}, 1  # more greedy samples repeat the first
        sampled = {**_SAMPLED, "temperature": self.temperature, "max_gen_toks": budget}
        return sampled, self.samples.get(task)

    def record(self, seed: int) -> dict[str, Any]:
        """The run-level entry of the eval JSON (``heldout_protocol``); ``seed`` is the one
        lm-eval seeded python, numpy and torch with (sampled runs repeat with it)."""
        return {
            "protocol": self.name,
            "decoding": self.decoding,
            "model_type": self.model_type,
            "temperature": self.temperature if self.decoding == "sampled" else 0.0,
            "seed": seed,
        }


def resolve_protocol(
    name: str,
    model: Any,
    *,
    temperature: float = 1.0,
    samples: Mapping[str, int] | None = None,
) -> HeldoutProtocol:
    """The protocol ``name`` for ``model`` (its ``config.model_type`` picks the paper's decoding)."""
    if name not in PROTOCOLS:
        raise EvalError(f"must be one of {list(PROTOCOLS)}, got {name!r}", field="protocol")
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    decoding = {"greedy": "greedy", "sampled": "sampled"}.get(name) or family_decoding(model_type)
    return HeldoutProtocol(
        name,
        decoding,
        model_type,
        temperature,
        dict(PAPER_SAMPLES if samples is None else samples),
    )


def decoding_record(task: Any) -> dict[str, Any]:
    """What an lm-eval task object will actually do (after the overrides): the per-task entry
    ``heldout.<task>.decoding`` of the eval JSON."""
    config = task.config
    if config.output_type != "generate_until":
        return {"output_type": config.output_type, "do_sample": False, "temperature": None,
                "samples": 1, "max_new_tokens": None}  # fmt: skip
    kwargs = config.generation_kwargs or {}
    do_sample = bool(kwargs.get("do_sample", False))
    return {
        "output_type": config.output_type,
        "do_sample": do_sample,
        "temperature": kwargs.get("temperature") if do_sample else 0.0,
        "top_p": kwargs.get("top_p"),
        "top_k": kwargs.get("top_k"),
        "min_p": kwargs.get("min_p"),
        "repetition_penalty": kwargs.get("repetition_penalty"),
        "samples": int(config.repeats or 1),
        "max_new_tokens": kwargs.get("max_gen_toks"),
    }
