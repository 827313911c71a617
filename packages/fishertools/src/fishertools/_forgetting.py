"""Forgetting numbers per checkpoint, from a JSON mapping or a folder of eval JSON files.

Two measures have names of their own, because they are different numbers:

* ``delta_nll``, ΔNLL (sample mean): measured by ``compare`` itself on ``--loss-data`` (each
  response's mean NLL, averaged over responses; checkpoint minus base);
* ``delta_l_ref``, ΔL_ref (token mean): forgetbench's reference-loss increase (all response
  tokens pooled), read from its eval JSON (``refloss.delta_l_ref``).

Two inputs are accepted (see the README):

* a JSON file mapping a checkpoint (path or name) to a number (measure ``forgetting``) or to an
  object ``{measure: number}``;
* a folder of ``*.json`` eval files, one per checkpoint: forgetbench's own output (the checkpoint
  is its ``model``, the measure ``delta_l_ref`` its ``refloss.delta_l_ref``), or
  ``{"checkpoint": "runs/a/checkpoint-10", "delta_l_ref": 0.12, "heldout_drop": 0.03}``
  (either measure may be absent; further measures go in an optional ``"forgetting": {name: number}``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fishertools._config import FisherError
from mixsd_base import read_json

__all__ = [
    "DELTA_L_REF",
    "DELTA_NLL",
    "KNOWN_MEASURES",
    "MEASURE_NAMES",
    "checkpoint_labels",
    "load_forgetting",
    "match_forgetting",
]

DELTA_NLL = "delta_nll"
DELTA_L_REF = "delta_l_ref"
KNOWN_MEASURES = (DELTA_L_REF, "heldout_drop")
# How plots and messages name a measure key (a key not listed is shown as it is).
MEASURE_NAMES = {
    DELTA_NLL: "ΔNLL (sample mean)",
    DELTA_L_REF: "ΔL_ref (token mean)",
    "heldout_drop": "held-out drop",
}


def _number(value: Any, path: Path, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FisherError(f"expected a finite number, got {value!r}", path=path, field=field)
    return float(value)


def _from_eval_file(path: Path) -> tuple[str, dict[str, float]]:
    record = read_json(path, what="eval file")
    if not isinstance(record, dict):
        raise FisherError("expected a JSON object", path=path)
    checkpoint = record.get("checkpoint", record.get("model"))  # forgetbench writes "model"
    if not isinstance(checkpoint, str):
        raise FisherError(
            "missing (a string; forgetbench's 'model')", path=path, field="checkpoint"
        )
    refloss = record.get("refloss")
    if isinstance(refloss, dict) and refloss.get(DELTA_L_REF) is not None:
        record = {DELTA_L_REF: refloss[DELTA_L_REF], **record}
        field_of = {DELTA_L_REF: f"refloss.{DELTA_L_REF}"}
    else:
        field_of = {}
    measures = {
        key: _number(record[key], path, field_of.get(key, key))
        for key in KNOWN_MEASURES
        if record.get(key) is not None
    }
    extra = record.get("forgetting") or {}
    if not isinstance(extra, dict):
        raise FisherError("must be an object of numbers", path=path, field="forgetting")
    for key, value in extra.items():
        measures[key] = _number(value, path, f"forgetting.{key}")
    if not measures:
        raise FisherError(
            f"no forgetting measure ({', '.join(KNOWN_MEASURES)}, refloss.{DELTA_L_REF} "
            "or 'forgetting')",
            path=path,
        )
    return checkpoint, measures


def load_forgetting(path: str | Path) -> dict[str, dict[str, float]]:
    """checkpoint key -> {measure: value}, from a mapping file or a folder of eval files."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise FisherError("no *.json eval files in this folder", path=path.absolute())
        result: dict[str, dict[str, float]] = {}
        for file in files:
            key, measures = _from_eval_file(file)
            if key in result:
                raise FisherError(
                    f"checkpoint {key!r} appears in more than one eval file", path=file
                )
            result[key] = measures
        return result
    data = read_json(path, what="forgetting file")
    if not isinstance(data, dict) or not data:
        raise FisherError("expected a non-empty JSON object of checkpoint -> forgetting", path=path)
    result = {}
    for key, value in data.items():
        if isinstance(value, dict):
            result[key] = {m: _number(v, path, f"{key}.{m}") for m, v in value.items()}
        else:
            result[key] = {"forgetting": _number(value, path, key)}
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
            raise FisherError(f"forgetting key {key!r} is ambiguous ({names})", path=source)
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
