"""forgetbench: how much a fine-tuned model learned, and how much it forgot.

Python API::

    import forgetbench
    rows = forgetbench.load_benchmark("gsm8k-100")            # normalised rows, offline
    forgetbench.score_math("... \\boxed{0.5}", "\\frac{1}{2}")  # True
    result = forgetbench.evaluate(forgetbench.EvalConfig(model="default", out="evals/base.json",
                                                         suites=["heldout"], limit=5))
    forgetbench.run_edit(model, tokenizer, "world/")          # the edit suite on WORLD/edit/

The held-out tasks are lm-eval YAML files in ``forgetbench.tasks_dir()``:
``lm_eval --model hf --model_args pretrained=FOLDER --include_path $(python -c
"import forgetbench; print(forgetbench.tasks_dir())") --tasks fb_gsm8k100 --apply_chat_template``.
Importing this package does not import torch, transformers or lm-eval.
"""

from forgetbench._config import DEFAULT_SUITES, DEFAULT_TASKS, SUITES, EvalConfig
from forgetbench._data import (
    BENCHMARKS,
    Benchmark,
    data_dir,
    fetch_benchmark,
    get_benchmark,
    list_benchmarks,
    load_benchmark,
    register_benchmark,
    resolve_data_file,
)
from forgetbench._edit import EDIT_SPLITS, run_edit
from forgetbench._errors import EvalError
from forgetbench._heldout import HELDOUT_TASKS, HeldoutTask, run_heldout, tasks_dir
from forgetbench._indomain import INDOMAIN_SPLITS, QA_SPLITS, run_indomain
from forgetbench._prompts import code_prompt, math_prompt, mmlu_prompt, mmlu_split
from forgetbench._protocol import PROTOCOLS, HeldoutProtocol, resolve_protocol
from forgetbench._refloss import (
    delta_l_ref_se,
    l_ref,
    reference_prompts,
    reference_set,
    run_refloss,
)
from forgetbench._runner import evaluate, heldout_item_scores, retention
from forgetbench._sandbox import code_execution_allowed, run_humaneval
from forgetbench._scoring import (
    extract_code,
    has_code_block,
    last_boxed,
    mmlu_letter,
    score_math,
    score_mmlu,
)
from forgetbench._taxonomy import BUCKETS, TaxonomyConfig, classify, leakage_entities, tally

__version__ = "0.1.0"

__all__ = [
    "BENCHMARKS",
    "BUCKETS",
    "DEFAULT_SUITES",
    "DEFAULT_TASKS",
    "EDIT_SPLITS",
    "HELDOUT_TASKS",
    "INDOMAIN_SPLITS",
    "PROTOCOLS",
    "QA_SPLITS",
    "SUITES",
    "Benchmark",
    "EvalConfig",
    "EvalError",
    "HeldoutProtocol",
    "HeldoutTask",
    "TaxonomyConfig",
    "__version__",
    "classify",
    "code_execution_allowed",
    "code_prompt",
    "data_dir",
    "delta_l_ref_se",
    "evaluate",
    "extract_code",
    "fetch_benchmark",
    "get_benchmark",
    "has_code_block",
    "heldout_item_scores",
    "l_ref",
    "last_boxed",
    "leakage_entities",
    "list_benchmarks",
    "load_benchmark",
    "math_prompt",
    "mmlu_letter",
    "mmlu_prompt",
    "mmlu_split",
    "reference_prompts",
    "reference_set",
    "register_benchmark",
    "resolve_data_file",
    "resolve_protocol",
    "retention",
    "run_edit",
    "run_heldout",
    "run_humaneval",
    "run_indomain",
    "run_refloss",
    "score_math",
    "score_mmlu",
    "tally",
    "tasks_dir",
]
