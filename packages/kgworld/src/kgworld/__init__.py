"""kgworld: deterministic fictional knowledge graphs and the KGFact / KGFunc / edit datasets.

Python API::

    import kgworld
    world = kgworld.generate(kgworld.resolve_config(overrides={"preset": "small", "seed": 0}))
    world.write("world/")
    same = kgworld.load("world/")

The library imports only networkx, mixsd_base (the shared MixSD plumbing, standard library
only) and the standard library; the command line (``kgworld gen|config|stats|check|
import-mquake|import-qa``) needs the ``cli`` extra (Typer, PyYAML). User errors are
:class:`KGWorldError` (a ``mixsd_base.UserError``); an unknown verifier name is mixsd_base's
``UnknownNameError``.
"""

from kgworld._check import check_world, world_stats
from kgworld._config import (
    ONE_SENTENCE_INSTRUCTION,
    PRESETS,
    STEP_BY_STEP_INSTRUCTION,
    TARGET_FORMS,
    ConfigError,
    DataError,
    EditConfig,
    KGFactConfig,
    KGFuncConfig,
    KGWorldError,
    WorldConfig,
    load_config,
    resolve_config,
)
from kgworld._edit import Rewrite, read_rewrite, rewrite_prompt
from kgworld._graph import retrieval_kb
from kgworld._kgfunc import FEW_SHOT_INPUTS, OPERATIONS, Operation, recompute_answer
from kgworld._mquake import import_mquake, load_mquake
from kgworld._qa import QA_INSTRUCTION, QAImport, import_qa, in_validation, load_qa, qa_target
from kgworld._verify import (
    VERIFIERS,
    answers_match,
    extract_boxed,
    get_verifier,
    normalize_answer,
    normalize_open_answer,
    open_answers_match,
    record_answers,
    verify,
    verify_record,
)
from kgworld._world import QA_KIND, World, generate, load, read_jsonl

__version__ = "0.1.0"

__all__ = [
    "FEW_SHOT_INPUTS",
    "ONE_SENTENCE_INSTRUCTION",
    "OPERATIONS",
    "PRESETS",
    "QA_INSTRUCTION",
    "QA_KIND",
    "STEP_BY_STEP_INSTRUCTION",
    "TARGET_FORMS",
    "VERIFIERS",
    "ConfigError",
    "DataError",
    "EditConfig",
    "KGFactConfig",
    "KGFuncConfig",
    "KGWorldError",
    "Operation",
    "QAImport",
    "Rewrite",
    "World",
    "WorldConfig",
    "__version__",
    "answers_match",
    "check_world",
    "extract_boxed",
    "generate",
    "get_verifier",
    "import_mquake",
    "import_qa",
    "in_validation",
    "load",
    "load_config",
    "load_mquake",
    "load_qa",
    "normalize_answer",
    "normalize_open_answer",
    "open_answers_match",
    "qa_target",
    "read_jsonl",
    "read_rewrite",
    "recompute_answer",
    "record_answers",
    "resolve_config",
    "retrieval_kb",
    "rewrite_prompt",
    "verify",
    "verify_record",
    "world_stats",
]
