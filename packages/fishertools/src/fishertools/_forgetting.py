"""Forgetting numbers per checkpoint, from a JSON mapping or a folder of eval JSON files.

Two inputs are accepted (see the README):

* a JSON file mapping a checkpoint (path or name) to a number (measure ``forgetting``) or to an
  object ``{measure: number}``;
* a folder of ``*.json`` eval files, one per checkpoint, each
  ``{"checkpoint": "runs/a/checkpoint-10", "reference_loss_increase": 0.12, "heldout_drop": 0.03}``
  (either measure may be absent; further measures go in an optional ``"forgetting": {name: number}``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from fishertools._config import FisherError

__all__ = ["KNOWN_MEASURES", "checkpoint_labels", "load_forgetting", "match_forgetting"]

KNOWN_MEASURES = ("reference_loss_increase", "heldout_drop")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FisherError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FisherError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def _from_eval_file(path: Path) -> tuple[str, dict[str, float]]:
    record = _read_json(path)
    if not isinstance(record, dict):
        raise FisherError(f"{path}: expected a JSON object")
    if not isinstance(record.get("checkpoint"), str):
        raise FisherError(f"{path}: missing field 'checkpoint' (a string)")
    measures = {
        key: _number(record[key], f"{path}: field '{key}'")
        for key in KNOWN_MEASURES
        if record.get(key) is not None
    }
    extra = record.get("forgetting") or {}
    if not isinstance(extra, dict):
        raise FisherError(f"{path}: field 'forgetting' must be an object of numbers")
    for key, value in extra.items():
        measures[key] = _number(value, f"{path}: field 'forgetting.{key}'")
    if not measures:
        raise FisherError(
            f"{path}: no forgetting measure ({', '.join(KNOWN_MEASURES)} or 'forgetting')"
        )
    return record["checkpoint"], measures


def load_forgetting(path: str | Path) -> dict[str, dict[str, float]]:
    """checkpoint key -> {measure: value}, from a mapping file or a folder of eval files."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise FisherError(f"no *.json eval files in {path.absolute()}")
        result: dict[str, dict[str, float]] = {}
        for file in files:
            key, measures = _from_eval_file(file)
            if key in result:
                raise FisherError(f"{file}: checkpoint {key!r} appears in more than one eval file")
            result[key] = measures
        return result
    if not path.is_file():
        raise FisherError(f"forgetting file not found: {path.absolute()}")
    data = _read_json(path)
    if not isinstance(data, dict) or not data:
        raise FisherError(f"{path}: expected a non-empty JSON object of checkpoint -> forgetting")
    result = {}
    for key, value in data.items():
        if isinstance(value, dict):
            result[key] = {m: _number(v, f"{path}: field '{key}.{m}'") for m, v in value.items()}
        else:
            result[key] = {"forgetting": _number(value, f"{path}: field '{key}'")}
    return result


def _key_matches(key: str, checkpoint: Path, roots: list[Path]) -> bool:
    """A key names a checkpoint by a path (absolute or relative to a root) or by a path suffix."""
    target = checkpoint.resolve()
    as_path = Path(key).expanduser()
    candidates = [as_path] if as_path.is_absolute() else [root / as_path for root in roots]
    if any(c.resolve() == target for c in candidates):
        return True
    parts = Path(key).parts
    return bool(parts) and ".." not in parts and target.parts[-len(parts) :] == parts


def match_forgetting(
    forgetting: dict[str, dict[str, float]], checkpoints: list[Path], source: Path
) -> tuple[list[dict[str, float]], list[str]]:
    """Measures for each checkpoint (empty dict if none) and the keys that matched nothing."""
    roots = [Path.cwd(), source.parent if source.is_file() else source]
    found: list[dict[str, float]] = [{} for _ in checkpoints]
    owner: dict[int, str] = {}
    unmatched = []
    for key, measures in forgetting.items():
        hits = [i for i, c in enumerate(checkpoints) if _key_matches(key, c, roots)]
        if len(hits) > 1:
            names = ", ".join(str(checkpoints[i]) for i in hits)
            raise FisherError(f"{source}: forgetting key {key!r} is ambiguous ({names})")
        if not hits:
            unmatched.append(key)
            continue
        if hits[0] in owner:
            raise FisherError(
                f"{source}: checkpoint {checkpoints[hits[0]]} matches keys {owner[hits[0]]!r} and {key!r}"
            )
        owner[hits[0]] = key
        found[hits[0]] = measures
    return found, unmatched


def checkpoint_labels(checkpoints: list[Path]) -> list[str]:
    """The shortest path suffix that tells each checkpoint apart (``run1/checkpoint-10``).

    A Trainer folder name (``checkpoint-N``) says nothing alone, so its run folder is kept too.
    """
    parts = [c.resolve().parts for c in checkpoints]
    labels = []
    for mine in parts:
        depth = 2 if mine[-1].startswith("checkpoint-") and len(mine) > 1 else 1
        while depth < len(mine) and sum(p[-depth:] == mine[-depth:] for p in parts) > 1:
            depth += 1
        labels.append("/".join(mine[-depth:]))
    return labels
