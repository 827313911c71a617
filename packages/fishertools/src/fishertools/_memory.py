"""How much accelerator memory ``compute_fisher`` plans to hold, before any model is loaded.

The Fisher of Appendix E.1 takes one gradient per sample in the model's own dtype and casts it to
fp32 just before squaring; the squares are summed in an fp32 accumulator. So, per parameter:

    weights (dtype) + gradients in flight (dtype) + accumulator (fp32)
    bf16: 2 + 2 + 4 =  8 bytes   (Qwen3-8B, 8.19e9 parameters: 65.5 GB)
    fp32: 4 + 4 + 4 = 12 bytes   (Qwen3-8B: 98.3 GB)

``loop`` holds one sample's gradients (``param.grad``); ``vmap`` holds a chunk's per-sample
gradients plus about as much again in autograd temporaries (measured on SmolLM2-135M, see the
README). Activations come on top and grow with the sequence length (the logits alone are
T x vocab x 4 bytes, three times over with their log-softmax and gradient); they are not
counted here. Standard library only: the plan is cheap enough to print before loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from fishertools._config import FisherError
from mixsd_core import DTYPE_WORDS

__all__ = ["DTYPE_BYTES", "MemoryPlan", "memory_plan"]

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
ACCUMULATOR_BYTES = 4  # fp32, whatever the model's dtype
VMAP_GRADIENT_COPIES = 2  # per sample in a chunk: the gradients and autograd's temporaries


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes ``compute_fisher`` holds on its device, activations aside."""

    weights: int
    gradients: int
    accumulator: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.accumulator

    def describe(self) -> str:
        gb = 1e9
        return (
            f"{self.total / gb:.1f} GB = weights {self.weights / gb:.1f} + gradients "
            f"{self.gradients / gb:.1f} + fp32 accumulator {self.accumulator / gb:.1f} "
            "(activations not counted)"
        )


def memory_plan(
    num_params: int,
    dtype: str = "bfloat16",
    *,
    method: str = "loop",
    chunk_size: int = 1,
    selected: int | None = None,
) -> MemoryPlan:
    """The plan for a model of ``num_params`` parameters in ``dtype`` (a mixsd dtype word), of
    which ``selected`` (default: all) get a Fisher entry."""
    if dtype not in DTYPE_WORDS:
        raise FisherError(f"unknown dtype {dtype!r}", field="dtype")
    width = DTYPE_BYTES[DTYPE_WORDS[dtype]]
    kept = num_params if selected is None else selected
    in_flight = 1 if method == "loop" else VMAP_GRADIENT_COPIES * chunk_size
    return MemoryPlan(
        weights=num_params * width,
        gradients=in_flight * kept * width,
        accumulator=kept * ACCUMULATOR_BYTES,
    )
