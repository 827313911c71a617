"""Question-answer corpora in ``mixsd run`` (SimpleQA and any QA file) and the authors' SimpleQA
rollout filter.

* ``world: {qa: FILE}`` (or ``{qa: {file: FILE, question_col: ..., ...}}``): the world stage
  imports the file with ``kgworld.import_qa`` instead of generating a world; ``data.split:
  qa/train`` trains on its training questions, and the in-domain evaluation scores
  ``qa/train`` and the held-out ``qa/validation`` (the factuality probe).
* ``rollout.filter: intersection`` (FACTS.md §3, the authors' ``filter_correct_intersection``):
  a training row keeps its mixed target only where the rollouts of *every* alpha verified it;
  everywhere else each MixSD file holds the ground-truth row (the SFT target), so every file has
  the records' rows in their order. Training, NLL and the report read the filtered files.
* ``rollout.filter: fill`` (beyond the paper): the same fallback file by file, so each rollout
  keeps every target it verified and trains on the ground-truth row for each fact it dropped: a
  MixSD run then has a target for every fact (issue 18: MixSD cannot learn a fact it never gets
  a target for), and how many rows fall back is the rollout's drop count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixsd._context import Artifact, RunContext, TrainingData
from mixsd._units import digest_of
from mixsd_base import (
    check_fields,
    file_sha256,
    option,
    read_json,
    read_jsonl,
    write_json,
    write_jsonl,
)

if TYPE_CHECKING:
    from mixsd._run_config import RunConfig

__all__ = ["FILTERS", "QASource", "check", "filter_rollouts", "import_world", "report_lines"]

FILTERS = ("none", "intersection", "fill")
# rollouts/FILTER.json: what the filter kept; each filtered file is LABEL.FILTER.jsonl
SUMMARIES = {"intersection": "intersection.json", "fill": "fill.json"}


@dataclass
class QASource:
    """``world.qa``: a question-answer file the world stage imports (``kgworld import-qa``)."""

    file: str = option(
        "", "The QA file: .csv (SimpleQA's layout), .jsonl or .parquet.", required=True
    )
    question_col: str | None = option(
        None, "Question column (null: 'problem' when the file has it, else 'question')."
    )
    answer_col: str = option("answer", "Answer column.")
    aliases_col: str | None = option(
        None, "Column of other accepted answers (a list, a JSON list or 'a | b'); null: none."
    )
    skip_bad_rows: bool = option(
        False, "Leave bad rows out (listed in the import's manifest) instead of stopping."
    )
    val_fraction: float = option(
        0.1,
        "Share of questions held out as qa/validation (the factuality probe), by a hash of the "
        "question and seed.",
        interval="[0, 1)",
    )
    seed: int = option(42, "Seed of the train / validation split.")
    instruction: str | None = option(
        None, "Instruction after every question (null: answer concisely within \\boxed{})."
    )

    def __post_init__(self) -> None:
        check_fields(self)

    def import_options(self) -> dict[str, Any]:
        """``kgworld.import_qa``'s keyword arguments."""
        import kgworld

        options = {k: v for k, v in asdict(self).items() if k != "file"}
        if options["instruction"] is None:
            options["instruction"] = kgworld.QA_INSTRUCTION
        return options


def check(config: RunConfig) -> None:
    """At load time: the filter is known, and a QA world trains on its own split."""
    if config.rollout.filter not in FILTERS:
        raise config.error(
            ("rollout", "filter"), f"unknown filter; choose one of: {', '.join(FILTERS)}"
        )
    if config.world.qa is not None and config.data.split.partition("/")[0] != "qa":
        raise config.error(
            ("data", "split"),
            "a QA world has the splits qa/train and qa/validation: set data.split: qa/train",
        )


def import_world(ctx: RunContext) -> Artifact:
    """The world stage for ``world.qa``: the file imported into RUN/world/."""
    import kgworld

    qa = ctx.config.world.qa
    assert qa is not None
    source = Path(qa.file).expanduser().absolute()
    if not source.is_file():
        raise ctx.config.error(("world", "qa"), f"{source} not found")
    folder = ctx.paths.world
    options = qa.import_options()

    def build() -> None:
        kgworld.import_qa(source, folder, **options, overwrite=True)
        for entry in read_json(folder / "manifest.json")["skipped"]:
            column = f", column {entry['column']!r}" if entry["column"] else ""
            ctx.units.echo(f"[world] skipped row {entry['row']}{column}: {entry['problem']}")

    inputs = {"qa": {**options, "file": str(source), "sha256": file_sha256(source)}}
    return Artifact(folder, ctx.units.run("world", "qa", inputs, [folder], build))


def _tokenizer(model: str) -> Any:
    """The base model's tokenizer (a folder or hub id; a bare .gguf loads through mixsd_core)."""
    if model.endswith(".gguf"):
        from mixsd_core import load_model

        return load_model(model)[1]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


def _ground_truth_rows(ctx: RunContext, records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rollout-shaped rows that train on each record's own target: the prompts rendered as the
    rollouts render them (no ``target_ids``: the target text is tokenised, as for SFT)."""
    if not records:
        return {}
    from mixsd_core import PromptConfig, detect_task, render_prompts

    tokenizer = _tokenizer(ctx.base_model)
    section = ctx.config.rollout
    prompts = PromptConfig(style=section.prompt_style, task=section.task)
    rows = {}
    for record in records:
        naive, expert = render_prompts(tokenizer, record, prompts)
        rows[record["id"]] = {
            **{k: record.get(k) for k in ("id", "prompt", "target", "answer", "context")},
            **{k: record.get(k) for k in ("split", "meta")},
            "gold_target": record["target"],
            "naive_prompt": naive,
            "expert_prompt": expert,
            "seed": ctx.config.seed,
            "attempt": None,
            "verified": True,  # the ground truth, which the verifier checks against
            "finish_reason": "ground-truth",
            "task": detect_task(record, section.task),
            "origin": "ground-truth",
        }
    return rows


def filter_rollouts(
    ctx: RunContext, data: TrainingData, rollouts: dict[str, Artifact], mode: str
) -> dict[str, Artifact]:
    """``{rollout label: filtered file}`` (``rollouts/LABEL.MODE.jsonl``), one unit: each file
    holds every record in order, its mixed row where it is kept (by every alpha's rollouts for
    ``intersection``, by its own for ``fill``), else the ground-truth row. A ``fill`` file's
    digest covers its own rollouts only, an ``intersection`` file's every alpha's."""
    from mixsd._methods import rollout_key

    groups = ctx.config.rollout_groups()
    labels = [label for label in groups if label in rollouts]
    outs = {a: rollouts[a].path.with_name(f"{rollouts[a].path.stem}.{mode}.jsonl") for a in labels}
    summary = ctx.paths.root / "rollouts" / SUMMARIES[mode]
    section = ctx.config.rollout
    inputs = {
        "data": data.digest,
        "rollouts": {rollout_key(a): rollouts[a].digest for a in labels},
        "model": ctx.base_digest,
        "prompt": [section.prompt_style, section.task],
        "seed": ctx.config.seed,
    }

    def build() -> None:
        records = read_jsonl(data.records)
        kept = {
            a: {
                r["id"]: r
                for r in read_jsonl(rollouts[a].path, allow_empty=True)
                if r.get("verified") is not False
            }
            for a in labels
        }
        shared = set.intersection(*(set(rows) for rows in kept.values()))
        mixed = {a: shared if mode == "intersection" else set(kept[a]) for a in labels}
        truth = _ground_truth_rows(
            ctx, [r for r in records if any(r["id"] not in mixed[a] for a in labels)]
        )
        for label in labels:
            rows = [
                {**kept[label][r["id"]], "origin": "mixed"}
                if r["id"] in mixed[label]
                else {**truth[r["id"]], "alpha": groups[label][0]}
                for r in records
            ]
            write_jsonl(outs[label], rows)
        verified = {rollout_key(a): len(kept[a]) for a in labels}
        if mode == "intersection":
            counts = {"mixed": len(shared), "ground_truth": len(records) - len(shared)}
            write_json(summary, {"rows": len(records), **counts, "verified": verified})
        else:
            write_json(summary, {"rows": len(records), "verified": verified})

    digest = ctx.units.run("rollouts", mode, inputs, [*outs.values(), summary], build)
    if mode == "intersection":  # every file depends on every alpha's rollouts
        return {a: Artifact(outs[a], digest) for a in labels}
    # A fill file depends on its own rollouts only: adding a method to the run must not retrain
    # (or re-score) the others.
    own = {k: v for k, v in inputs.items() if k != "rollouts"}
    return {
        a: Artifact(outs[a], digest_of({"filter": mode, **own, "rollout": rollouts[a].digest}))
        for a in labels
    }


def report_lines(run: dict[str, Any]) -> list[str]:
    """The report's note of which verifier scored each in-domain split (from the eval files)
    and, after ``rollout.filter``, how many rows kept their mixed targets."""
    verifiers: dict[str, list[str]] = {}
    for path in run.get("evals", {}).values():
        result = read_json(path) if Path(path).is_file() else {}
        for split, entry in {
            **(result.get("indomain") or {}),
            **(result.get("edit") or {}),
        }.items():
            name = entry.get("verifier") if isinstance(entry, dict) else None
            if name and split not in verifiers.setdefault(name, []):
                verifiers[name].append(split)
    lines = []
    if verifiers:
        lines += ["## In-domain verifiers", ""]
        lines += [f"- `{name}`: {', '.join(splits)}" for name, splits in verifiers.items()]
        if any("qa/validation" in splits for splits in verifiers.values()):
            lines += [
                "- qa/validation: the QA file's held-out questions, never trained on (the "
                "factuality probe: real-world knowledge kept or forgotten)"
            ]
        lines.append("")
    files = [Path(p) for p in (run.get("rollouts") or {}).values()]
    mode = next((m for m in SUMMARIES if files and files[0].name.endswith(f".{m}.jsonl")), None)
    summary = files[0].parent / SUMMARIES[mode] if mode else None
    if summary is not None and summary.is_file():
        counts = read_json(summary)
        per_alpha = ", ".join(f"{a}: {n}" for a, n in counts["verified"].items())
        if mode == "intersection":
            note = (
                f"{counts['mixed']} of {counts['rows']} rows were verified at every alpha and "
                f"keep their mixed targets; the other {counts['ground_truth']} train on the "
                f"ground-truth target in every MixSD file (verified per alpha: {per_alpha})."
            )
        else:
            note = (
                f"Each MixSD file keeps the targets its rollouts verified and trains on the "
                f"ground-truth target for the rest of the {counts['rows']} rows (verified: "
                f"{per_alpha})."
            )
        lines += [f"## Rollout filter: {mode}", "", note, ""]
    return lines
