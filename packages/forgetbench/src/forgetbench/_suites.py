"""The suites ``forgetbench eval`` runs, by name, in this order: held-out, in-domain, edit,
reference loss. Each reads the loaded model and the run's settings from a ``SuiteRun`` and adds
its entries to the run's result, per-sample records and data-file hashes. torch, transformers
and lm-eval are imported inside the suites.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgetbench._taxonomy import TaxonomyConfig
from mixsd_base import Registry, file_sha256

if TYPE_CHECKING:
    from forgetbench._config import EvalConfig

__all__ = ["SUITES", "SuiteRun", "retention"]


@dataclass
class SuiteRun:
    """One evaluation in progress: what the suites read, and what they add."""

    config: EvalConfig
    model: Any
    tokenizer: Any
    load: Callable[[str], tuple[Any, Any]]  # model spec -> (model, tokenizer), for the base
    world: Path | None
    entities: list[str]  # leakage whitelist of the taxonomy
    taxonomy: TaxonomyConfig
    base_scores: dict[str, Any] | None  # the base eval's held-out scores (retention)
    result: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    data_files: dict[str, str] = field(default_factory=dict)  # file -> sha256

    def add(
        self,
        suite: str,
        scores: dict[str, Any],
        samples: list[dict[str, Any]],
        hashes: dict[str, str],
    ) -> None:
        self.result[suite] = scores
        self.samples += samples
        self.data_files.update(hashes)


SUITES: Registry[Callable[[SuiteRun], None]] = Registry("suite")


def retention(scores: dict[str, Any], base_scores: dict[str, Any]) -> dict[str, float | None]:
    """Each held-out score as % of the base model's, and the average (ratio of the means)."""
    out: dict[str, float | None] = {}
    mine, theirs = [], []
    for task, entry in scores.items():
        base = base_scores.get(task, {})
        if "score" not in entry or "score" not in base:
            continue
        out[task] = entry["score"] / base["score"] * 100 if base["score"] else None
        mine.append(entry["score"])
        theirs.append(base["score"])
    if theirs:
        out["average"] = sum(mine) / sum(theirs) * 100 if sum(theirs) else None
    return out


@SUITES.register("heldout")
def heldout_suite(run: SuiteRun) -> None:
    """lm-eval tasks, decoded as ``config.protocol`` says for this model."""
    from forgetbench._heldout import run_heldout
    from forgetbench._protocol import resolve_protocol

    config = run.config
    protocol = resolve_protocol(
        config.protocol, run.model, temperature=config.temperature, samples=config.samples
    )
    run.result["heldout_protocol"] = protocol.record(config.seed)
    scores, logged, files = run_heldout(
        run.model,
        run.tokenizer,
        config.tasks,
        limit=config.heldout_limit or config.limit,
        batch_size=config.batch_size,
        loglikelihood_batch_size=config.loglikelihood_batch_size,
        max_new_tokens=config.max_new_tokens,
        allow_code_exec=config.allow_code_exec,
        protocol=protocol,
        data_dir=config.data_dir,
        entities=run.entities,
        taxonomy=run.taxonomy,
        seed=config.seed,
    )
    run.add("heldout", scores, logged, {f: file_sha256(f) for f in files.values()})
    run.result["taxonomy"] = {t: s["taxonomy"] for t, s in scores.items() if s.get("taxonomy")}
    scored = [s["score"] for s in scores.values() if "score" in s]
    run.result["heldout_average"] = sum(scored) / len(scored) if scored else None
    if run.base_scores is not None:
        run.result["retention"] = retention(scores, run.base_scores)


def _world_suite(
    run: SuiteRun, suite: str, runner: Callable[..., Any], folder: Path, **options: Any
) -> None:
    """A suite that greedily answers a world folder's questions (in-domain, edit)."""
    config = run.config
    found = runner(
        run.model,
        run.tokenizer,
        folder,
        limit=config.limit,
        batch_size=config.batch_size,
        max_new_tokens=config.indomain_max_new_tokens,
        **options,
    )
    run.add(suite, *found)


@SUITES.register("indomain")
def indomain_suite(run: SuiteRun) -> None:
    """The world's KGFact, KGFunc and QA splits (EvalConfig requires a world for this suite)."""
    from forgetbench._indomain import QA_SPLITS, run_indomain

    assert run.world is not None
    qa = run.config.qa_verifier
    verifiers = dict.fromkeys(QA_SPLITS, qa) if qa is not None else None
    scorer = run.config.indomain_scorer
    _world_suite(run, "indomain", run_indomain, run.world, scorer=scorer, verifiers=verifiers)


@SUITES.register("edit")
def edit_suite(run: SuiteRun) -> None:
    """Edit efficacy, generalisation, multi-hop and locality (edits folder, else the world)."""
    from forgetbench._edit import run_edit

    folder = run.config.edits or run.world
    assert folder is not None  # EvalConfig requires one
    _world_suite(run, "edit", run_edit, Path(folder))


@SUITES.register("refloss")
def refloss_suite(run: SuiteRun) -> None:
    """ΔL_ref (token mean) on the base model's reference responses."""
    from forgetbench._refloss import run_refloss

    config = run.config
    run.result["refloss"] = run_refloss(
        run.model,
        run.tokenizer,
        config.base_model,
        load=run.load,
        n_prompts=config.limit or config.ref_prompts,
        prompts_file=config.ref_prompts_file,
        max_new_tokens=config.ref_max_new_tokens,
        batch_size=config.batch_size,
        cache_dir=config.cache_dir,
        is_base=config.base_model == config.model,
    )
