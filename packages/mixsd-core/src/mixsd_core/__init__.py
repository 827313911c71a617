"""MixSD core."""

from mixsd_base import lazy_exports, lazy_table
from mixsd_core._masks import draw_mask, stable_seed
from mixsd_core._model_registry import (
    MODEL_REGISTRY,
    ModelError,
    ModelInfo,
    list_models,
    mixsd_home,
)
from mixsd_core._model_spec import (
    DTYPE_WORDS,
    MODEL_HELP,
    ModelSpec,
    parse_dtype,
    resolve_model_spec,
)
from mixsd_core._models import convert_model, load_model
from mixsd_core._nll import (
    DEFAULT_NLL_THRESHOLD,
    PAPER_NLL_THRESHOLDS,
    NLLConfig,
    NLLError,
    ScoredTarget,
    high_nll_overlap,
    load_targets,
    paired_nll,
    run_nll,
    summarize_nll,
)
from mixsd_core._prompts import (
    EXPERT_TEMPLATES,
    PromptConfig,
    detect_task,
    render_naive_prompt,
    render_prompts,
)
from mixsd_core._retry import decode_with_retries
from mixsd_core._rollout_config import AUTO_VERIFIERS, RolloutConfig, RolloutError
from mixsd_core._rollout_io import mixing_shares, read_records
from mixsd_core._rollout_policy import MIXING_KNOBS, MIXINGS, MixedRow, Mixing
from mixsd_core._rollout_stage import load_rollout_model, run_rollout
from mixsd_core._stop_tokens import stop_token_ids
from mixsd_core._tokens import (
    pad_left,
    pad_right,
    pad_token_id,
    render_chat,
    render_user_prompt,
    response_nll_tensors,
    token_nll,
)

__version__ = "0.1.0"

# Names backed by torch (or vllm) load on first use, so `import mixsd_core` (and `--help`) stays
# fast. _nll and _tokens import torch only inside their functions.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **lazy_table(
            "mixsd_core._rollout",
            (
                "greedy_generate",
                "mixed_rollout",
                "reference_mixed_rollout",
                "reference_mixed_row",
                "traced_mixed_rollout",
            ),
        ),
        **lazy_table("mixsd_core._sampling", ("sample_rollout", "sampled_mixed_rollout")),
        "score_targets": "mixsd_core._nll",
        **lazy_table(
            "mixsd_core._rollout_vllm",
            (
                "VLLMModel",
                "load_vllm_model",
                "mask_runs",
                "vllm_mixed_rollout",
                "vllm_traced_rollout",
            ),
        ),
    },
)

__all__ = [
    "AUTO_VERIFIERS",
    "DEFAULT_NLL_THRESHOLD",
    "DTYPE_WORDS",
    "EXPERT_TEMPLATES",
    "MIXINGS",
    "MIXING_KNOBS",
    "MODEL_HELP",
    "MODEL_REGISTRY",
    "PAPER_NLL_THRESHOLDS",
    "MixedRow",
    "Mixing",
    "ModelError",
    "ModelInfo",
    "ModelSpec",
    "NLLConfig",
    "NLLError",
    "PromptConfig",
    "RolloutConfig",
    "RolloutError",
    "ScoredTarget",
    "VLLMModel",
    "__version__",
    "convert_model",
    "decode_with_retries",
    "detect_task",
    "draw_mask",
    "greedy_generate",
    "high_nll_overlap",
    "list_models",
    "load_model",
    "load_rollout_model",
    "load_targets",
    "load_vllm_model",
    "mask_runs",
    "mixed_rollout",
    "mixing_shares",
    "mixsd_home",
    "pad_left",
    "pad_right",
    "pad_token_id",
    "paired_nll",
    "parse_dtype",
    "read_records",
    "reference_mixed_rollout",
    "reference_mixed_row",
    "render_chat",
    "render_naive_prompt",
    "render_prompts",
    "render_user_prompt",
    "resolve_model_spec",
    "response_nll_tensors",
    "run_nll",
    "run_rollout",
    "sample_rollout",
    "sampled_mixed_rollout",
    "score_targets",
    "stable_seed",
    "stop_token_ids",
    "summarize_nll",
    "token_nll",
    "traced_mixed_rollout",
    "vllm_mixed_rollout",
    "vllm_traced_rollout",
]
