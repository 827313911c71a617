"""What every stage of ``mixsd run`` takes: the run context (config, paths, units, base model)
and the small typed results one stage hands to the next."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mixsd._run_config import RunConfig
    from mixsd._units import UnitRunner

__all__ = ["Artifact", "RunContext", "RunPaths", "TrainingData"]


@dataclass(frozen=True)
class RunPaths:
    """Where each stage writes inside the run folder."""

    root: Path

    @property
    def world(self) -> Path:
        return self.root / "world"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def records(self, split: str) -> Path:
        """The training records of ``split`` (``data/kgfact/train.jsonl``)."""
        return self.data / f"{split}.jsonl"

    def rollout(self, label: str) -> Path:
        """A rollout file by its label (:func:`mixsd._methods.rollout_label`)."""
        return self.root / "rollouts" / f"{label}.jsonl"

    @property
    def frontier(self) -> Path:
        return self.root / "frontier"

    def nll(self, name: str) -> Path:
        return self.root / "nll" / f"{name}.json"

    def train(self, label: str) -> Path:
        return self.root / "train" / label

    def eval(self, label: str) -> Path:
        return self.root / "eval" / f"{label}.json"

    @property
    def fisher(self) -> Path:
        return self.root / "fisher"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def index(self) -> Path:
        return self.root / "run.json"

    @property
    def report(self) -> Path:
        return self.root / "report.md"


@dataclass
class RunContext:
    """One run: its config, its folder, its unit runner and the resolved base model."""

    config: RunConfig
    paths: RunPaths
    units: UnitRunner
    base_model: str  # a folder (registry names converted) or a hub id
    base_digest: Any  # what identifies its weights (see model_digest)
    progress: bool = True


@dataclass(frozen=True)
class Artifact:
    """A stage's output and the digest later stages record as their input."""

    path: Path
    digest: str


@dataclass(frozen=True)
class TrainingData:
    """The data stage's output: the training records and a world-shaped folder of the
    in-domain splits about the same facts."""

    folder: Path
    records: Path
    digest: str
