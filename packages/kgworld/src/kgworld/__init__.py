"""kgworld: deterministic fictional knowledge graphs and the KGFact / KGFunc datasets.

Python API::

    import kgworld
    world = kgworld.generate(kgworld.resolve_config(overrides={"preset": "small", "seed": 0}))
    world.write("world/")
    same = kgworld.load("world/")

The library imports only networkx and the standard library; the command line
(``kgworld gen|stats|check``) needs the ``cli`` extra (Typer, PyYAML).
"""

from kgworld._config import (
    PRESETS,
    ConfigError,
    KGFactConfig,
    KGFuncConfig,
    KGWorldError,
    WorldConfig,
    load_config,
    resolve_config,
)
from kgworld._verify import (
    VERIFIERS,
    answers_match,
    extract_boxed,
    get_verifier,
    normalize_answer,
    verify,
)

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "VERIFIERS",
    "ConfigError",
    "KGFactConfig",
    "KGFuncConfig",
    "KGWorldError",
    "WorldConfig",
    "__version__",
    "answers_match",
    "extract_boxed",
    "get_verifier",
    "load_config",
    "normalize_answer",
    "resolve_config",
    "verify",
]
