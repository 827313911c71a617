"""Stage ``data``: the training records (the first ``data.limit`` of the split) and a
world-shaped folder whose in-domain splits ask only about those facts.

The retrieval split is the exception: it asks about the facts of a separate knowledge base
(``meta.kb == "retrieval"``), never about trained ones, so no record is "about" the trained
facts; its first ``data.limit`` records are kept (all when the limit is null, as the paper
evaluates the whole set). A world written before that KB existed has retrieval questions about
the trained facts, and those are filtered like the other splits.
"""

from __future__ import annotations

from typing import Any

from mixsd._context import Artifact, RunContext, TrainingData
from mixsd_base import atomic_write, read_jsonl, write_jsonl

__all__ = ["run"]


def run(ctx: RunContext, world: Artifact) -> TrainingData:
    section = ctx.config.data
    split, limit, indomain = section.split, section.limit, list(section.indomain)
    source_file = world.path / f"{split}.jsonl"
    if not source_file.is_file():
        raise ctx.config.error(("data", "split"), f"{world.path / split}.jsonl not found")
    folder = ctx.paths.data
    records_file = ctx.paths.records(split)

    def build() -> None:
        records = read_jsonl(source_file, allow_empty=True)[:limit]
        write_jsonl(records_file, records)
        family, _, name = split.partition("/")
        if family == "kgfact" and name == "train":
            facts = {r["meta"]["fact"] for r in records}
            for other in indomain:
                _keep(world, folder, f"kgfact/{other}", lambda r: _about(r, facts), limit)
        elif family == "edit" and name == "train":  # the edits chosen, and what they touch
            chosen = {r["id"] for r in records}
            for other in ("paraphrase", "multihop", "locality"):
                _keep(world, folder, f"edit/{other}", lambda r, o=other: _touches(r, chosen, o))
        elif family == "kgfunc":  # held-out operations / inputs: evaluated as generated
            for other in ("test", "unseen"):
                _keep(world, folder, f"kgfunc/{other}", lambda r: True)
        elif family == "qa":  # the held-out questions (the factuality probe), all of them
            _keep(world, folder, "qa/validation", lambda r: True)
        # The world manifest travels along: evaluations record what they ran on.
        with atomic_write(folder / "manifest.json", "wb") as f:
            f.write((world.path / "manifest.json").read_bytes())

    inputs = {"world": world.digest, "split": split, "limit": limit, "indomain": indomain}
    digest = ctx.units.run("data", split.replace("/", "-"), inputs, [records_file], build)
    return TrainingData(folder, records_file, digest)


def _keep(world: Artifact, folder: Any, split: str, wanted: Any, limit: int | None = None) -> None:
    """Copy the records of ``split`` that ``wanted`` accepts, if the world has the split; the
    first ``limit`` of the records about a separate knowledge base (see the module note)."""
    source = world.path / f"{split}.jsonl"
    if source.is_file():
        records = read_jsonl(source, allow_empty=True)
        kept = [r for r in records if not _other_kb(r) and wanted(r)]
        kept += [r for r in records if _other_kb(r)][:limit]  # about no trained fact
        write_jsonl(folder / f"{split}.jsonl", kept)


def _other_kb(record: dict[str, Any]) -> bool:
    """Whether the record asks about a knowledge base other than the trained world's."""
    return (record.get("meta") or {}).get("kb") is not None


def _about(record: dict[str, Any], facts: set[int]) -> bool:
    meta = record.get("meta") or {}
    if "fact" in meta:
        return meta["fact"] in facts
    return bool(meta.get("facts")) and all(f in facts for f in meta["facts"])


def _touches(record: dict[str, Any], chosen: set[str], split: str) -> bool:
    """Whether an edit-split question belongs to the chosen edits (locality: always kept)."""
    meta = record.get("meta") or {}
    if split == "paraphrase":
        return meta.get("edit_id") in chosen
    if split == "multihop":
        return bool(meta.get("edit_ids")) and set(meta["edit_ids"]) <= chosen
    return True
