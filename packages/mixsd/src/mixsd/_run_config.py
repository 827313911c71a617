"""The config of ``mixsd run``: one YAML file naming the model, the world, the methods to compare,
and each stage's options.

It loads through mixsd_base (``extends:``, ``--set a.b=v``, file:line:field errors). Each stage
section is typed by its stage's own config class (see ``_sections``), and every stage's config is
built once at load time with the values the run gives it, so a bad option stops the run before
any work, naming the file, line and field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixsd._context import RunPaths
from mixsd._frontier import FrontierSection
from mixsd._methods import MethodSpec
from mixsd._sections import (
    DataSection,
    EvalSection,
    FisherSection,
    NLLSection,
    RolloutSection,
    TrainSection,
    WorldSection,
)
from mixsd_base import ConfigSource, UserError, build_config, merge, read_config_file

__all__ = ["RunConfig", "RunError", "load_run_config"]


class RunError(UserError):
    """A bad run config or run folder: the CLI prints it as one line."""


@dataclass
class RunConfig:
    """Everything ``mixsd run`` does, from the world to the report."""

    out: str = field(default="", metadata={"help": "Run folder: one subfolder per stage."})
    model: str = field(
        default="default",
        metadata={
            "help": "Base model: registry name, folder, hub id, GGUF, or a training folder "
            "(its selected checkpoint)."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of rollouts, training and evaluation."})
    world: WorldSection = field(
        default_factory=WorldSection, metadata={"help": WorldSection.__doc__}
    )
    data: DataSection = field(default_factory=DataSection, metadata={"help": DataSection.__doc__})
    methods: list[MethodSpec] = field(
        default_factory=list, metadata={"help": "The methods to compare (sft, mixsd@0.3, ...)."}
    )
    rollout: RolloutSection = field(
        default_factory=RolloutSection, metadata={"help": RolloutSection.__doc__}
    )
    frontier: FrontierSection | None = field(
        default=None,
        metadata={
            "help": "The target frontier (mixsd frontier: fixed alphas and each mixing "
            "policy's knob on the training records, no training) in RUN/frontier and the "
            "report; null (the default) skips it."
        },
    )
    train: TrainSection = field(
        default_factory=TrainSection, metadata={"help": TrainSection.__doc__}
    )
    select: str = field(
        default="auto",
        metadata={
            "help": "Checkpoint rule: auto (sft: first-peak, else last: the authors' code), "
            "first-peak, converged, last, or paper (Appendix D: the first checkpoint at the best "
            "training accuracy whose validation accuracy drops at most 5 points over the next "
            "two; every method then also validates each checkpoint on the validation split)."
        },
    )
    nll: NLLSection = field(default_factory=NLLSection, metadata={"help": NLLSection.__doc__})
    eval: EvalSection = field(
        default_factory=EvalSection,  # type: ignore[arg-type]  # (EvalConfig needs model, out)
        metadata={"help": EvalSection.__doc__},
    )
    fisher: FisherSection | None = field(
        default_factory=FisherSection,
        metadata={"help": "FisherConfig + CompareConfig options; null skips the Fisher stage."},
    )
    report: bool = field(default=True, metadata={"help": "Write report.md and the plots."})
    # Where each key came from (file and line), for errors found after loading.
    source: ConfigSource = field(
        init=False, repr=False, compare=False, default_factory=ConfigSource
    )

    def __post_init__(self) -> None:
        if not self.out:
            raise RunError("the run folder is required", field="out")
        if not self.methods:
            raise RunError("name at least one method to compare", field="methods")
        labels = [m.label for m in self.methods]
        dupes = sorted({n for n in labels if labels.count(n) > 1})
        if dupes:
            raise RunError(f"the names {dupes} appear twice; give each a 'name'", field="methods")

    @property
    def paths(self) -> RunPaths:
        return RunPaths(Path(self.out).absolute())

    @property
    def trained(self) -> list[MethodSpec]:
        return [m for m in self.methods if m.method != "base"]

    def rollout_groups(self) -> dict[str, tuple[float, dict[str, Any]]]:
        """``{rollout label: (alpha, rollout options)}``: one rollout file for each alpha and
        options some method trains at, ordered by alpha (a plain alpha before its variants)."""
        groups = {
            m.rollout_name: (m.alpha, m.rollout)
            for m in self.methods
            if m.alpha is not None and m.rollout_name is not None
        }
        order = sorted(groups, key=lambda label: (groups[label][0], bool(groups[label][1]), label))
        return {label: groups[label] for label in order}

    def error(self, keys: Sequence[str], message: str) -> RunError:
        """A :class:`RunError` naming the file and line of ``keys`` (``("eval",)``)."""
        path, line = self.source.locate(keys)
        return RunError(message, path=path, line=line, field=".".join(keys) or None)

    def section_error(self, keys: Sequence[str], exc: Exception) -> RunError:
        """A stage config's error, placed under its section: a field the stage names
        (``batch_size``) becomes ``rollout.batch_size`` at that key's line of this file."""
        if isinstance(exc, UserError) and exc.field and exc.path is None:
            return self.error((*keys, *exc.field.split(".")), exc.message)
        return self.error(keys, str(exc))


def load_run_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """Read (``extends:`` resolved), override (nested, from ``--set``), type and check a run
    config; every stage's config is built once, so bad values fail here."""
    source = read_config_file(path)
    data = merge(source.data, overrides or {})
    if isinstance(data.get("methods"), list):
        data["methods"] = [MethodSpec.expand(m) for m in data["methods"]]
    if "world" in data:
        data["world"] = WorldSection.from_yaml(data["world"])
    if "train" in data:
        data["train"] = TrainSection.from_yaml(data["train"])
    located = ConfigSource(data, source.path, source.origins)
    config = build_config(RunConfig, data, source=located)
    config.source = located
    from mixsd._stages import check_stages

    check_stages(config)
    return config
