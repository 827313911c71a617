"""Stage ``data``: the training subset and the in-domain questions kept with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mixsd_base import read_jsonl, write_jsonl


def _run(tmp_path: Path, world_dir: Path, **data: Any) -> Path:
    from mixsd._context import Artifact, RunContext, RunPaths
    from mixsd._run_config import load_run_config
    from mixsd._stages import data as data_stage
    from mixsd._units import UnitRunner

    config_file = tmp_path / "run.yaml"
    run = {"out": str(tmp_path / "run"), "world": {"path": str(world_dir)}, "data": data}
    config_file.write_text(yaml.safe_dump({**run, "methods": ["base", "sft"]}))
    config = load_run_config(config_file)
    paths = RunPaths(tmp_path / "run")
    ctx = RunContext(config, paths, UnitRunner(paths.root, echo=lambda line: None), "m", None)
    data_stage.run(ctx, Artifact(world_dir, "world"))
    return paths.data


@pytest.mark.parametrize("limit", [4, None])
def test_retrieval_questions_are_kept_though_about_untrained_facts(
    tmp_path: Path, small_world_dir: Path, limit: int | None
) -> None:
    """The retrieval split asks about a separate knowledge base: none of its records is about a
    trained fact, yet the first data.limit of them (all when null) are evaluated."""
    folder = _run(tmp_path, small_world_dir, limit=limit)
    retrieval = read_jsonl(small_world_dir / "kgfact" / "retrieval.jsonl")
    expected = retrieval if limit is None else retrieval[:limit]
    assert read_jsonl(folder / "kgfact" / "retrieval.jsonl") == expected
    train = read_jsonl(folder / "kgfact" / "train.jsonl")
    facts = {r["meta"]["fact"] for r in train}
    assert len(train) == (limit or 100)
    paraphrase = read_jsonl(folder / "kgfact" / "paraphrase.jsonl")
    assert {r["meta"]["fact"] for r in paraphrase} == facts  # the others: about trained facts


def test_old_worlds_retrieval_is_filtered_to_the_trained_facts(
    tmp_path: Path, small_world_dir: Path
) -> None:
    """A world written before the retrieval KB asks about the trained facts (meta.fact, no
    meta.kb): those records stay filtered like the other splits."""
    world = tmp_path / "old-world"
    (world / "kgfact").mkdir(parents=True)
    (world / "manifest.json").write_bytes((small_world_dir / "manifest.json").read_bytes())
    train = read_jsonl(small_world_dir / "kgfact" / "train.jsonl")
    write_jsonl(world / "kgfact" / "train.jsonl", train)
    old = [{**r, "split": "retrieval", "context": "Background information:"} for r in train]
    write_jsonl(world / "kgfact" / "retrieval.jsonl", old[::-1])
    folder = _run(tmp_path, world, limit=3, indomain=["retrieval"])
    kept = read_jsonl(folder / "kgfact" / "retrieval.jsonl")
    assert sorted(r["meta"]["fact"] for r in kept) == [0, 1, 2]
