"""The sections of a run config, typed.

A stage section (``rollout:``, ``nll:``, ``eval:``, ``fisher:``) is its stage's own config class
minus the fields the pipeline fills: the same names, types, defaults and help, so every option of
``mixsd rollout`` / ``nll`` / ``eval`` / ``fisher`` works here, and an unknown key or a wrong type
is an error naming the file, line and field when the config loads.

Which fields the pipeline fills (a stage's inputs and outputs: ``model``, ``data``, ``out``, ...)
is said by the owning package, in the field's metadata: ``metadata={"pipeline": True}``
(:data:`PIPELINE`). Until a package marks its fields, :data:`_UNMARKED` names them. Settings the
run config holds elsewhere (its ``seed``, each method's ``alpha``) are the run's own decision and
listed with each section here.
"""

from __future__ import annotations

import copy
from dataclasses import MISSING, Field, dataclass, field, fields, make_dataclass
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

from fishertools import CompareConfig, FisherConfig
from forgetbench import EvalConfig
from mixsd._qa import FILTERS, QASource
from mixsd_base import ConfigError
from mixsd_core import NLLConfig, RolloutConfig

__all__ = [
    "PIPELINE",
    "DataSection",
    "EvalSection",
    "FisherSection",
    "NLLSection",
    "RolloutSection",
    "TrainSection",
    "WorldSection",
    "pipeline_fields",
    "section_class",
    "stage_config",
]

C = TypeVar("C")

# Field metadata key: True on a stage config field that the pipeline fills (an input or output
# location), so a run config may not set it.
PIPELINE = "pipeline"

# The pipeline's fields of the stage configs whose packages do not mark them yet, by class name
# (subclasses included). A class with at least one marked field uses its marks only.
_UNMARKED: dict[str, tuple[str, ...]] = {
    "RolloutConfig": ("model", "data", "out"),
    "NLLConfig": ("model", "data", "out", "compare"),
    "EvalConfig": ("model", "out", "world", "base", "base_model", "cache_dir"),
    "CompareConfig": ("forgetting", "loss_data"),
    "TrainConfig": ("model", "data", "eval_data"),
    "MEMITConfig": ("model", "edits", "output_dir"),
}

KGFACT_SPLITS = ("train", "paraphrase", "twohop", "retrieval")
# The eval suites that measure a checkpoint's forgetting (R4): what fisher.checkpoint_suites picks.
CHECKPOINT_SUITES = ("heldout", "refloss")


def pipeline_fields(cls: type) -> frozenset[str]:
    """The fields of a stage config that the pipeline fills (marked, else :data:`_UNMARKED`)."""
    marked = frozenset(f.name for f in fields(cls) if f.metadata.get(PIPELINE))
    if marked:
        return marked
    for klass in cls.__mro__:
        if klass.__name__ in _UNMARKED:
            return frozenset(_UNMARKED[klass.__name__])
    return frozenset()


def section_class(
    name: str,
    doc: str,
    classes: tuple[type, ...],
    run_sets: tuple[str, ...] = (),
    extra: tuple[tuple[str, Any, Field[Any]], ...] = (),
) -> type:
    """A dataclass with the fields of ``classes`` (first one wins on a shared name) minus the
    pipeline's fields and ``run_sets``, plus ``extra``."""
    specs: list[tuple[str, Any, Field[Any]]] = []
    taken = {spec[0] for spec in extra}
    for cls in classes:
        hints = get_type_hints(cls)
        skip = pipeline_fields(cls) | set(run_sets)
        for f in fields(cls):
            if not f.init or f.name in skip or f.name in taken:
                continue
            taken.add(f.name)
            if f.default is not MISSING:
                spec = field(default=f.default, metadata=f.metadata)
            else:  # the stage classes give every non-pipeline field a default
                spec = field(default_factory=f.default_factory, metadata=f.metadata)
            specs.append((f.name, hints[f.name], spec))
    specs.extend(extra)
    return make_dataclass(name, specs, namespace={"__doc__": doc, "__module__": __name__})


def stage_config(cls: type[C], section: Any, **owned: Any) -> C:
    """``cls`` from a section's values (those ``cls`` has) and the pipeline's ``owned`` fields."""
    names = {f.name for f in fields(cls) if f.init}  # type: ignore[arg-type]
    values = {
        f.name: copy.deepcopy(getattr(section, f.name)) for f in fields(section) if f.name in names
    }
    return cls(**{**values, **owned})


if TYPE_CHECKING:  # to a type checker a section reads as its stage config (a superset of it)

    class RolloutSection(RolloutConfig):
        filter: str  # the run's own option (see below), not RolloutConfig's

    class NLLSection(NLLConfig): ...

    class EvalSection(EvalConfig): ...

    class FisherSection(FisherConfig, CompareConfig):
        checkpoint_suites: list[str]  # the run's own option (see below)

else:
    RolloutSection = section_class(
        "RolloutSection",
        "``rollout:``: RolloutConfig options (mixsd rollout); alpha comes from each method.",
        (RolloutConfig,),
        run_sets=("alpha", "seed"),
        extra=(
            (
                "filter",
                str,
                field(
                    default="none",
                    metadata={
                        "help": "none; intersection (the authors' SimpleQA filter): a row "
                        "keeps its mixed target only where every alpha's rollouts verified it, "
                        "else every MixSD file trains on its ground-truth target; fill (beyond "
                        "the paper): the same file by file, so each MixSD file trains on the "
                        "ground-truth target of each fact its rollouts dropped.",
                        "choices": FILTERS,
                    },
                ),
            ),
        ),
    )
    NLLSection = section_class(
        "NLLSection",
        "``nll:``: NLLConfig options (mixsd nll of each method's targets).",
        (NLLConfig,),
    )
    EvalSection = section_class(
        "EvalSection",
        "``eval:``: EvalConfig options (mixsd eval of the base model and each trained one).",
        (EvalConfig,),
        run_sets=("seed",),
    )
    FisherSection = section_class(
        "FisherSection",
        "``fisher:``: FisherConfig + CompareConfig options (mixsd fisher compute / compare).",
        (FisherConfig, CompareConfig),
        # FisherConfig.samples: the reference set is cut to ``samples`` already, so Fisher uses all
        # of it; loss_samples is that same size, and the pipeline always draws the plot.
        run_sets=("samples", "loss_samples", "plot"),
        extra=(
            (
                "samples",
                int | None,
                field(
                    default=None,
                    metadata={
                        "help": "Reference prompts: the Fisher data and the set forgetting is "
                        "measured on (null: eval.limit, else 32)."
                    },
                ),
            ),
            (
                "checkpoint_suites",
                list[str],
                field(
                    default_factory=lambda: list(CHECKPOINT_SUITES),
                    metadata={
                        "help": "With evaluate_checkpoints: all, the eval suites run on each "
                        "checkpoint that is not selected (those of eval.suites among "
                        "heldout, refloss); [refloss] measures R4's forgetting as ΔL_ref "
                        "alone, far cheaper than held-out generation on CPU.",
                    },
                ),
            ),
        ),
    )


# How ``mixsd run`` starts a training unit: in its own process, or data-parallel / sharded.
LAUNCHERS = ("none", "torchrun", "accelerate")


@dataclass
class TrainSection:
    """``train:``: trainer options for every trained method, over an optional trainer file.

    In YAML the options sit beside ``config``, ``lr_grid`` and the launcher keys
    (``train: {config: F, max_steps: 24}``). Each
    method takes those its config class has (TrainConfig fields, or e.g. OPSD's
    ``num_generations``); a key no trained method has is an error.
    """

    config: str | None = field(
        default=None, metadata={"help": "A trainer YAML file (as mixsd train --config)."}
    )
    options: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "Trainer options for every method."}
    )
    lr_grid: list[float] | None = field(
        default=None,
        metadata={
            "help": "Learning rates to sweep (the paper: 1e-6 ... 1e-4): each trained method "
            "is trained at each, and the rate whose selected checkpoint scores best on the "
            "validation split (kgfact/paraphrase, kgfunc/test, edit/paraphrase, "
            "qa/validation) is kept "
            "(tie: the smaller rate). A method whose own train: sets learning_rate is trained "
            "once at it. null: no sweep."
        },
    )

    launcher: str = field(
        default="none",
        metadata={
            "help": "How each training unit runs: 'none' (in this process), 'torchrun' (nproc "
            "processes, data-parallel) or 'accelerate' (accelerate launch with "
            "accelerate_config, e.g. configs/accelerate/fsdp-8b.yaml)."
        },
    )
    nproc: int | None = field(
        default=None,
        metadata={
            "help": "Processes per training unit (torchrun: required; accelerate: overrides "
            "the config's num_processes). global_batch_size stays the batch over all of them."
        },
    )
    accelerate_config: str | None = field(
        default=None,
        metadata={"help": "accelerate config file for launcher 'accelerate' (null: its default)."},
    )

    def __post_init__(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise ConfigError(
                f"unknown launcher {self.launcher!r}; choose one of: {', '.join(LAUNCHERS)}",
                field="launcher",
            )
        if self.nproc is not None and self.nproc < 1:
            raise ConfigError(f"must be >= 1, got {self.nproc}", field="nproc")
        if self.launcher == "torchrun" and self.nproc is None:
            raise ConfigError("launcher torchrun needs nproc (processes per unit)", field="nproc")
        if self.accelerate_config is not None and self.launcher != "accelerate":
            raise ConfigError("only launcher 'accelerate' reads it", field="accelerate_config")
        if self.lr_grid is None:
            return
        if not self.lr_grid:
            raise ConfigError("give at least one learning rate, or null", field="lr_grid")
        for lr in self.lr_grid:
            if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
                raise ConfigError(f"learning rates must be > 0, got {lr!r}", field="lr_grid")
        if len(set(self.lr_grid)) != len(self.lr_grid):
            raise ConfigError(f"a learning rate appears twice in {self.lr_grid}", field="lr_grid")

    @classmethod
    def from_yaml(cls, raw: Any) -> Any:
        """``{config: F, lr_grid: G, k: v}`` -> ``{config: F, lr_grid: G, options: {k: v}}``
        (anything else unchanged)."""
        if not isinstance(raw, dict):
            return raw
        own = ("config", "lr_grid", "launcher", "nproc", "accelerate_config")
        options = {k: v for k, v in raw.items() if k not in own}
        return {**{k: raw[k] for k in own if k in raw}, "options": options}


@dataclass
class DataSection:
    """``data:``: which records are trained on, and which in-domain splits are evaluated."""

    split: str = field(default="kgfact/train", metadata={"help": "The world's training split."})
    limit: int | None = field(
        default=None,
        metadata={
            "help": "Train on the first N records (null: all); the in-domain evaluation keeps "
            "only questions about those facts (retrieval: its first N questions, which ask "
            "about a separate knowledge base)."
        },
    )
    indomain: list[str] = field(
        default_factory=lambda: list(KGFACT_SPLITS[1:]),
        metadata={"help": "KGFact question splits evaluated besides train (default: all)."},
    )

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"must be >= 1 or null, got {self.limit}", field="limit")
        bad = [x for x in self.indomain if x not in KGFACT_SPLITS[1:]]
        if bad:
            raise ConfigError(f"{bad} not among {list(KGFACT_SPLITS[1:])}", field="indomain")


@dataclass
class WorldSection:
    """``world:``: kgworld settings (a preset and any WorldConfig key), ``{path: FOLDER}``
    to use a world generated before, or ``{qa: FILE}`` / ``{qa: {file: FILE, ...}}`` to import
    a question-answer file (SimpleQA's CSV, any CSV / JSONL / Parquet) instead."""

    path: str | None = field(default=None, metadata={"help": "A world folder made before."})
    qa: QASource | None = field(
        default=None,
        metadata={"help": "A question-answer file imported as the world (kgworld import-qa)."},
    )
    settings: dict[str, Any] = field(
        default_factory=lambda: {"preset": "small"},
        metadata={"help": "kgworld config: preset, seed, kgfact, kgfunc, edit, ..."},
    )
    config: Any = field(init=False, default=None, repr=False)  # the resolved kgworld.WorldConfig

    def __post_init__(self) -> None:
        if self.qa is not None:
            if self.settings or self.path is not None:
                keys = ", ".join([*self.settings, *(["path"] if self.path else [])])
                raise ConfigError(f"a QA world takes no other settings ({keys})", field="qa")
            return
        if self.path is not None:
            if self.settings:
                raise ConfigError("a world given by path takes no other settings")
            return
        import kgworld

        self.config = kgworld.resolve_config(dict(self.settings))

    @classmethod
    def from_yaml(cls, raw: Any) -> Any:
        """``{path: F}``, ``{qa: F}`` or ``{preset: small, ...}`` -> the section's own fields.
        Beside ``qa`` a null setting is dropped: ``preset: null`` unsets an extended file's."""
        if not isinstance(raw, dict):
            return raw
        if "qa" in raw:
            qa = {"file": raw["qa"]} if isinstance(raw["qa"], str) else raw["qa"]
            rest = {k: v for k, v in raw.items() if k != "qa" and v is not None}
            return {"qa": qa, "settings": rest}
        settings = {k: v for k, v in raw.items() if k != "path"}
        return {"path": raw["path"], "settings": settings} if "path" in raw else {"settings": raw}
