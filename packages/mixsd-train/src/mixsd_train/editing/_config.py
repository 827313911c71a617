"""The MEMIT config (TRL style: one dataclass, ``help`` on every field) and the layer rule.

Defaults follow the MEMIT paper / EasyEdit's Llama and Qwen hparams (25 steps at lr 0.5 for the
target vectors, KL factor 0.0625, weight decay 1e-3, clamp norm factor 4, update weight 15000),
except the second-moment corpus, which must be available offline (see ``_stats``).

Edited layers: the paper's ranges where known (``PAPER_LAYERS``), else ``default_layers``, the
same early-middle band scaled to the model's depth (first = round(0.11 N), last = round(0.39 N)),
which reproduces 3-11 at 28 layers (Qwen3-1.7B) and 4-14 at 36 (Qwen3-4B).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mixsd_base import check_fields, option
from mixsd_train._errors import TrainError
from mixsd_train._fields import model_field

__all__ = ["PAPER_LAYERS", "MEMITConfig", "default_layers", "parse_layers"]

# (model_type, num_hidden_layers, hidden_size) -> edited layers, from the issue / paper setting.
PAPER_LAYERS: dict[tuple[str, int, int], tuple[int, int]] = {
    ("qwen3", 28, 2048): (3, 11),  # Qwen3-1.7B
    ("qwen3", 36, 2560): (4, 14),  # Qwen3-4B(-Instruct-2507)
    ("qwen3", 36, 4096): (5, 14),  # Qwen3-8B
}

# The band of the scaled rule, as fractions of the depth (fit to the Qwen3 ranges above).
FIRST_FRACTION = 0.11
LAST_FRACTION = 0.39


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def default_layers(model_config: Any) -> list[int]:
    """The paper's layers for a known model, else the scaled early-middle band of its depth.

    Scaled rule: layers round(0.11 N) .. round(0.39 N) of N (SmolLM2-135M, N = 30: 3-12;
    a 4-layer test model: 0-2), never above layer N - 2. Always at least one layer, always inside the model.
    """
    depth = int(model_config.num_hidden_layers)
    key = (
        str(getattr(model_config, "model_type", "")),
        depth,
        int(getattr(model_config, "hidden_size", 0)),
    )
    if key in PAPER_LAYERS:
        first, last = PAPER_LAYERS[key]
    else:
        # The last edited layer needs layers above it: a vector written at the subject's token
        # reaches the object's position only through later attention.
        top = max(depth - 2, 0)
        first = min(_round_half_up(FIRST_FRACTION * depth), top)
        last = min(max(first, _round_half_up(LAST_FRACTION * depth)), top)
    return list(range(first, last + 1))


def parse_layers(value: str | int | list[int] | tuple[int, ...] | None) -> list[int] | None:
    """``"3-11"``, ``"3,5,7"``, ``"4"``, ``[3, 4]`` -> a sorted list of distinct layers."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TrainError(f"must be like '3-11' or '3,5,7', got {value!r}", field="layers")
    if isinstance(value, int):
        items: list[int] = [value]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        items = []
        for part in str(value).replace(" ", "").split(","):
            first, dash, last = part.partition("-")
            try:
                if dash:
                    lo, hi = int(first), int(last)
                    if hi < lo:
                        raise ValueError
                    items.extend(range(lo, hi + 1))
                else:
                    items.append(int(part))
            except ValueError:
                raise TrainError(
                    f"must be like '3-11' or '3,5,7', got {value!r}", field="layers"
                ) from None
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in items):
        raise TrainError(f"must be non-negative integers, got {value!r}", field="layers")
    return sorted(set(items))


@dataclass
class MEMITConfig:
    """``memit``: locate-and-edit (Meng et al., 2023) on ``model.layers[l].mlp.down_proj``."""

    # ---- what to edit (CLI flags --model / --edits / --out / --layers fill these)
    model: str = model_field()
    # "pipeline": mixsd run fills these (its training records, its folder)
    edits: str = option(
        "",
        "Edit requests JSONL: records whose meta.rewrite holds prompt/subject/target_new.",
        pipeline=True,
    )
    output_dir: str = option(
        "", "Folder for the edited model (HF format) + manifest.json.", pipeline=True
    )
    layers: str | int | list[int] | None = field(
        default=None,
        metadata={
            "help": "Edited layers, e.g. '3-11' or [3, 5, 7]; None = paper range or the scaled rule."
        },
    )
    overwrite: bool = option(False, "Replace an existing output folder.")
    # ---- the closed-form update
    # lambda > 0: lambda = 0 leaves K K^T singular for fewer edits than key dims
    mom2_update_weight: float = option(
        15000.0,
        "lambda in dW = R K^T (lambda C + K K^T)^-1 (paper / EasyEdit Llama, Qwen: 15000).",
        interval="(0, inf)",
    )
    mom2_corpus: str = option(
        "pydoc-prose",
        "Text for C = E[k k^T]: 'pydoc-prose', 'pydoc' (with code) or a UTF-8 .txt path.",
    )
    mom2_samples: int = option(256, "Corpus chunks used for C (each mom2_seq_len tokens).", min=1)
    mom2_seq_len: int = option(128, "Tokens per corpus chunk.", min=1)
    stats_dir: str | None = option(
        None, "Cache folder for C; None = $MIXSD_HOME/memit-stats (~/.cache/mixsd/...)."
    )
    # ---- the target vectors z (optimised residual at the last edited layer)
    v_num_grad_steps: int = option(25, "Adam steps per target vector.", min=1)
    v_lr: float = option(0.5, "Adam learning rate of the residual delta.", min=0)
    v_weight_decay: float = option(
        1e-3, "Penalty on |delta| / |h|^2 (EasyEdit v_weight_decay).", min=0
    )
    kl_factor: float = option(0.0625, "Weight of the KL term on the kl_prompt (essence).", min=0)
    clamp_norm_factor: float = option(
        4.0, "|delta| is clamped to this factor times |h| at the subject.", interval="(0, inf)"
    )
    v_stop_nll: float = option(
        0.05, "Stop a target's optimisation once its mean NLL is below this.", min=0
    )
    prompt_format: str = option(
        "completion",
        "'completion': edit through the bare rewrite prompt ('X was born in', the "
        "paper's MEMIT); 'chat': the record's question through the chat template, then the "
        "rewrite prompt as the start of the reply (how a chat model is asked).",
        choices=("completion", "chat"),
    )
    kl_prompt: str = option("{} is a", "Prompt (with '{}' for the subject) kept unchanged by KL.")
    # ---- context templates: random prefixes the model writes itself, plus the empty prefix
    context_templates: int = option(
        5, "Generated prefixes (one per start word 'The', 'Therefore', ...).", min=0
    )
    context_template_tokens: int = option(10, "Tokens per generated prefix.", min=1)
    # ---- run
    batch_size: int = option(16, "Prompts (or corpus chunks) per forward.", min=1)
    seed: int = option(0, "Seeds the context-template sampling.")
    device: str | None = option(None, "'cpu', 'cuda', ...; None = cuda if available.")
    dtype: str | None = option(None, "Model dtype; None = float32 on CPU, bfloat16 on GPU.")
    trust_remote_code: bool = option(
        False, "Allow custom model code from the hub (off by default)."
    )

    def __post_init__(self) -> None:
        self.layers = parse_layers(self.layers)
        if self.layers is not None and not self.layers:
            raise TrainError("must name at least one layer", field="layers")
        check_fields(self, error=TrainError)
        if self.kl_prompt.count("{}") != 1:
            raise TrainError(
                f"must contain '{{}}' exactly once, got {self.kl_prompt!r}", field="kl_prompt"
            )
