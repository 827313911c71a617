"""kgworld: deterministic fictional knowledge graphs and the KGFact / KGFunc / edit datasets.

Python API::

    import kgworld
    world = kgworld.generate(kgworld.resolve_config(overrides={"preset": "small", "seed": 0}))
    world.write("world/")
    same = kgworld.load("world/")

The library imports only networkx, mixsd_base (the shared MixSD plumbing, standard library
only) and the standard library; the command line (``kgworld gen|config|stats|check|
import-mquake``) needs the ``cli`` extra (Typer, PyYAML). User errors are
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
from kgworld._verify import (
    VERIFIERS,
    answers_match,
    extract_boxed,
    get_verifier,
    normalize_answer,
    verify,
)
from kgworld._world import World, generate, load, read_jsonl

__version__ = "0.1.0"

__all__ = [
    "FEW_SHOT_INPUTS",
    "ONE_SENTENCE_INSTRUCTION",
    "OPERATIONS",
    "PRESETS",
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
    "load",
    "load_config",
    "load_mquake",
    "normalize_answer",
    "read_jsonl",
    "read_rewrite",
    "recompute_answer",
    "resolve_config",
    "retrieval_kb",
    "rewrite_prompt",
    "verify",
    "world_stats",
]
