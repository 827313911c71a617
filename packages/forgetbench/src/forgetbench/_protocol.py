"""Held-out decoding protocols: how each lm-eval task decodes, and how many samples it scores.

* ``greedy`` (the default): every task as its YAML says (greedy, one sample; ``fb_aime24_paper``
  keeps its fixed 16 samples at T = 1.0) with ``max_new_tokens`` new tokens. Deterministic.
* ``paper``: the authors' capability evaluation (FACTS §5, their eval script). The model family
  decides: Llama models decode greedily, one sample; every other model (the paper's Qwen ones)
  is sampled (T = ``temperature``, 1.0; top_p 1, top_k and min_p off) with ``samples[task]``
  samples per problem (AIME-2024: 16; every other task 1), scored as the mean over all samples.
  MMLU's budget is 1024 new tokens, every other task's ``max_new_tokens`` (the paper: 16384).
* ``sampled``: ``paper``'s sampled decoding for any model, Llama included.

A model is Llama, as in the authors' script, when its ``config.json`` ``model_type`` is ``llama``
or an ``architectures`` entry contains "llama" (SmolLM2 is a Llama architecture). Sampling draws
from torch's generator, which lm-eval seeds with the run's ``seed`` before each call.
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


def is_llama(config: Any) -> bool:
    """The authors' test: ``model_type`` ``llama``, or an architecture naming Llama."""
    architectures = getattr(config, "architectures", None) or []
    return getattr(config, "model_type", None) == "llama" or any(
        "llama" in name.lower() for name in architectures
    )


@dataclass(frozen=True)
class HeldoutProtocol:
    """One run's resolved held-out decoding: what each task is told, and the record of it."""

    name: str = "greedy"  # as configured: greedy, paper, sampled
    decoding: str = "greedy"  # what runs: greedy or sampled
    model_type: str | None = None  # the model's config.json model_type (recorded)
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
    """The protocol ``name`` for ``model`` (its ``config`` picks the paper's decoding)."""
    if name not in PROTOCOLS:
        raise EvalError(f"must be one of {list(PROTOCOLS)}, got {name!r}", field="protocol")
    config = getattr(model, "config", None)
    decoding = name if name != "paper" else "greedy" if is_llama(config) else "sampled"
    return HeldoutProtocol(
        name,
        decoding,
        getattr(config, "model_type", None),
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
