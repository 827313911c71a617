"""A generated world: its graph and split records, written to and read from a folder.

Layout (``DESIGN.md``)::

    manifest.json   config, seed, counts, sha256 of every file, package version
    graph.json      networkx node-link data
    kgfact/{train,paraphrase,twohop,retrieval}.jsonl
    kgfunc/{train,test,unseen}.jsonl
    edit/{train,paraphrase,multihop,locality}.jsonl   (when edit.enabled)

Writing goes to a hidden sibling folder that is renamed into place only when complete, so
an interrupted run never leaves an output that looks finished.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import networkx as nx

import mixsd_base
from kgworld._config import (
    DataError,
    KGWorldError,
    WorldConfig,
    kgworld_errors,
    resolve_config,
)
from kgworld._edit import edit_splits
from kgworld._graph import FactGraph, build_graph
from kgworld._kgfact import Record, kgfact_splits
from kgworld._kgfunc import kgfunc_splits
from mixsd_base import check_output, file_sha256, read_json

MANIFEST = "manifest.json"
GRAPH = "graph.json"
MQUAKE_KIND = "mquake-import"  # manifest "kind" of a folder written by import_mquake
QA_KIND = "qa-import"  # manifest "kind" of a folder written by import_qa


def _version() -> str:
    from kgworld import __version__

    return __version__


@dataclass
class World:
    """A world in memory. ``splits`` maps ``"kgfact/train"``-style names to records."""

    config: WorldConfig
    kg: FactGraph
    splits: dict[str, list[Record]]

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The knowledge graph as a networkx ``DiGraph`` (built on first use)."""
        return self.kg.to_networkx()

    def records(self, name: str) -> list[Record]:
        try:
            return self.splits[name]
        except KeyError:
            raise KeyError(f"no split {name!r}; this world has: {', '.join(self.splits)}") from None

    def counts(self) -> dict[str, int]:
        return {name: len(records) for name, records in self.splits.items()}

    def files(self) -> Iterator[tuple[str, Iterator[bytes]]]:
        """(relative path, chunks of its bytes) for every data file, in a fixed order.

        Chunks are streamed so a million-fact world is never held twice in memory.
        """
        yield GRAPH, _graph_chunks(self.kg)
        for name, records in self.splits.items():
            yield f"{name}.jsonl", _jsonl_chunks(records)

    def write(self, out: str | Path, *, overwrite: bool = False) -> Path:
        """Write the world to ``out`` atomically; refuse a non-empty ``out`` unless ``overwrite``."""
        manifest = {
            "package": "kgworld",
            "version": _version(),
            "seed": self.config.seed,
            "config": self.config.to_dict(),
            "counts": {
                "nodes": len(self.kg.domain_of),
                "edges": len(self.kg.facts),
                **self.counts(),
            },
        }
        return write_folder(out, self.files(), manifest, overwrite=overwrite)


def write_folder(
    out: str | Path,
    files: Iterator[tuple[str, Iterator[bytes]]],
    manifest: Mapping[str, object],
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``files`` and ``manifest.json`` (plus their sha256 under ``files``) atomically.

    Everything goes to a hidden sibling folder that replaces ``out`` only when complete.
    """
    out = Path(out).absolute()
    check_output_dir(out, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        hashes: dict[str, str] = {}
        with _without_gc():
            for rel, chunks in files:
                path = tmp / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with path.open("wb") as handle:
                    for chunk in chunks:
                        digest.update(chunk)
                        handle.write(chunk)
                hashes[rel] = digest.hexdigest()
        manifest = {**manifest, "files": hashes}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


# World files are written here, not with mixsd_base.write_jsonl / write_json: they stay
# ASCII-escaped (json's default), so worlds keep their bytes and hashes, and each file is
# hashed while it streams into a folder that is renamed into place as a whole.
# Records are trees of fresh dicts and lists: the circular-reference check is wasted work.
_encode = json.JSONEncoder(check_circular=False, sort_keys=True).encode
_encode_in_order = json.JSONEncoder(check_circular=False).encode


def _jsonl_chunks(records: list[Record], per_chunk: int = 4096) -> Iterator[bytes]:
    for start in range(0, len(records), per_chunk):
        lines = (_encode_in_order(r) + "\n" for r in records[start : start + per_chunk])
        yield "".join(lines).encode()


def _graph_chunks(kg: FactGraph, per_chunk: int = 8192) -> Iterator[bytes]:
    """``json.dumps(kg.node_link(), sort_keys=True)`` plus a newline, streamed in pieces."""
    data = kg.node_link()
    arrays = {key: data.pop(key) for key in ("edges", "nodes")}
    # The small top-level values with the two arrays left as markers, then each array in chunks.
    head = _encode({**data, **dict.fromkeys(arrays, 0)})
    for key, items in arrays.items():
        before, _, head = head.partition(f'"{key}": 0')
        yield (before + f'"{key}": [').encode()
        for start in range(0, len(items), per_chunk):
            separator = ", " if start else ""
            chunk = ", ".join(_encode(item) for item in items[start : start + per_chunk])
            yield (separator + chunk).encode()
        yield b"]"
    yield (head + "\n").encode()


def check_output_dir(out: Path, *, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise KGWorldError("exists and is not a directory", path=out)
    check_output(out, folder=True)  # a file on the way to it, a folder the user may not write
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise KGWorldError(
            "output directory is not empty (pass --overwrite to replace it)", path=out
        )


def generate(
    config: WorldConfig | None = None, progress: Callable[[str], None] | None = None
) -> World:
    """Generate a world; the same config and seed always give the same world."""
    config = config or resolve_config()
    with _without_gc():
        return _generate(config, progress)


@contextmanager
def _without_gc() -> Iterator[None]:
    """Pause the cyclic GC: a big world is millions of small acyclic dicts and tuples, which the
    collector would rescan over and over (a 2-3x slowdown at 1M facts) and never free."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _generate(config: WorldConfig, progress: Callable[[str], None] | None) -> World:
    kg = build_graph(config.kgfact, config.seed, progress)
    splits: dict[str, list[Record]] = {}
    for name, records in kgfact_splits(kg, config.kgfact, config.seed).items():
        splits[f"kgfact/{name}"] = records
        if progress is not None:
            progress(f"kgfact/{name}: {len(records)} records")
    if config.kgfunc.enabled:
        for name, records in kgfunc_splits(config.kgfunc, config.seed).items():
            splits[f"kgfunc/{name}"] = records
            if progress is not None:
                progress(f"kgfunc/{name}: {len(records)} records")
    if config.edit.enabled:
        for name, records in edit_splits(kg, config).items():
            splits[f"edit/{name}"] = records
            if progress is not None:
                progress(f"edit/{name}: {len(records)} records")
    return World(config, kg, splits)


def read_jsonl(path: str | Path) -> list[Record]:
    """Records of a JSONL file (empty when it holds none); a malformed line is a
    :class:`DataError` naming the file and line."""
    with kgworld_errors(DataError):
        return mixsd_base.read_jsonl(path, allow_empty=True)


def load(path: str | Path, *, verify_hashes: bool = True) -> World:
    """Read a world folder written by :meth:`World.write`, checking every file's sha256."""
    root = Path(path).absolute()
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise DataError(f"not found (is {root} a kgworld output folder?)", path=manifest_path)
    with kgworld_errors(DataError):
        manifest = read_json(manifest_path, what="world manifest")
    if not isinstance(manifest, dict):
        raise DataError("expected a JSON object", path=manifest_path)
    if manifest.get("kind") == MQUAKE_KIND:
        raise DataError("an MQuAKE import (edit/ files only), not a world", path=manifest_path)
    if manifest.get("kind") == QA_KIND:
        raise DataError("a QA import (qa/ files only), not a world", path=manifest_path)
    for key in ("config", "files"):
        if key not in manifest:
            raise DataError("missing field", path=manifest_path, field=key)
    if not isinstance(manifest["files"], dict):
        raise DataError("expected an object of file: sha256", path=manifest_path, field="files")
    try:
        config = resolve_config(manifest["config"])
    except KGWorldError as exc:
        field = f"config.{exc.field}" if exc.field else "config"
        raise DataError(exc.message, path=manifest_path, field=field) from exc
    kg: FactGraph | None = None
    splits: dict[str, list[Record]] = {}
    for rel, expected in manifest["files"].items():
        file = root / rel
        if not file.is_file():
            raise DataError("listed in the manifest but missing", path=file)
        if verify_hashes and file_sha256(file) != expected:
            raise DataError(f"sha256 differs from {manifest_path} (file was modified)", path=file)
        if rel == GRAPH:
            with kgworld_errors(DataError):
                kg = FactGraph.from_node_link(read_json(file), str(file))
        else:
            splits[rel.removesuffix(".jsonl")] = read_jsonl(file)
    if kg is None:
        raise DataError(f"no {GRAPH} listed", path=manifest_path, field="files")
    return World(config, kg, splits)
