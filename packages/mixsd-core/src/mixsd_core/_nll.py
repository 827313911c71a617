"""Target NLL: how surprising a file of targets is to a model given the naive prompt alone.

Each record is scored the way training tokenises it (``mixsd_train._data.encode_pair``): the
naive prompt rendered by ``render_prompts`` (chat template, ``add_generation_prompt=True``),
tokenised without extra special tokens, then ``tokenizer(target)`` (no special tokens) and one
EOS. The NLL of every target token (EOS included) is ``-log p(token | prompt, earlier tokens)``
under the model, fp32, no grad (``mixsd_core.response_nll_tensors``, left padding: position ids count real
tokens only, so a record's NLLs do not depend on the batch it lands in).

Plain record files use their ``target``; rollout files (``mixsd rollout`` output) use their
``target`` (the mixed text) and, by default, only records whose ``verified`` is not False.

This module imports torch only inside the functions that run the model, so ``import mixsd_core``
stays light.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mixsd_base import UserError, check_fields, option, write_json
from mixsd_core._model_spec import MODEL_HELP
from mixsd_core._prompts import PromptConfig, render_prompts
from mixsd_core._tokens import pad_token_id, response_nll_tensors

__all__ = [
    "DEFAULT_NLL_THRESHOLD",
    "PAPER_NLL_THRESHOLDS",
    "NLLConfig",
    "NLLError",
    "ScoredTarget",
    "high_nll_overlap",
    "load_targets",
    "paired_nll",
    "run_nll",
    "score_targets",
    "summarize_nll",
]

DEFAULT_NLL_THRESHOLD = 8.0
# The paper's Tables 7 and 8 (Appendix E.2): tokens the base model is very unsure of (> 5) and
# tokens it has no signal for (> 8). The paired section always counts both; the per-file
# summaries keep the configured thresholds only, so their keys stay as they were.
PAPER_NLL_THRESHOLDS = (5.0, 8.0)


class NLLError(UserError):
    """A user error of the NLL stage (bad option, nothing to score): printed as one line."""


@dataclass
class NLLConfig:
    """Settings of ``mixsd nll``."""

    model: str = option("default", MODEL_HELP, pipeline=True)
    data: str = option("", "JSONL of records or a rollout file.", required=True, pipeline=True)
    out: str = option("", "Output JSON (e.g. nll/NAME.json).", required=True, pipeline=True)
    compare: str | None = option(
        None,
        "A second target file: adds the high-NLL token overlap and the paired figures "
        "(the records of both files with the same id).",
        pipeline=True,
    )
    thresholds: list[float] = field(
        default_factory=list,
        metadata={"help": f"NLL thresholds (nats) besides {DEFAULT_NLL_THRESHOLD:g}; repeatable."},
    )
    batch_size: int = option(8, "Records per forward pass.", min=1)
    limit: int | None = option(None, "Score only the first N (kept) records of each file.", min=1)
    quantiles: int = option(101, "Points of the CDF data (>= 2).", min=2)
    all_records: bool = option(False, "Rollout files: score failed (verified = false) records too.")
    device: str | None = option(None, "Device (default: CUDA if any).")

    def __post_init__(self) -> None:
        check_fields(self, error=NLLError)
        for t in self.thresholds:
            if not math.isfinite(t) or t < 0:
                raise NLLError(f"must be finite and >= 0, got {t}", field="thresholds")
        self.thresholds = sorted({DEFAULT_NLL_THRESHOLD, *map(float, self.thresholds)})


@dataclass
class ScoredTarget:
    """One record's target tokens (EOS last) and the NLL of each, in nats."""

    id: str
    token_ids: list[int]
    nll: list[float]


def _key(threshold: float) -> str:
    return f"{threshold:g}"


def load_targets(
    path: str | Path, *, verified_only: bool = True, limit: int | None = None
) -> tuple[list[dict[str, Any]], int]:
    """``(records, skipped)``: the file's records (failed rollout targets left out by default).

    A file that cannot be read or holds a bad record is a ``mixsd_base.DataError`` naming the
    file, line and field.
    """
    from mixsd_core._rollout_io import read_records

    records = read_records(path, need_answer=False)
    kept = [r for r in records if not (verified_only and r.get("verified") is False)]
    skipped = len(records) - len(kept)
    if limit is not None:
        kept = kept[:limit]
    if not kept:
        raise NLLError("no records to score", path=Path(path).absolute())
    return kept, skipped


def _encode(tokenizer: Any, record: Mapping[str, Any], eos: int) -> tuple[list[int], list[int]]:
    """(naive prompt ids, target ids + EOS), tokenised as ``mixsd_train`` tokenises them."""
    naive, _ = render_prompts(tokenizer, record, PromptConfig())
    prompt = list(tokenizer(naive, add_special_tokens=False)["input_ids"])
    target = list(tokenizer(str(record["target"]), add_special_tokens=False)["input_ids"])
    return prompt, [*target, eos]


def score_targets(
    model: Any,
    tokenizer: Any,
    records: Sequence[Mapping[str, Any]],
    *,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> list[ScoredTarget]:
    """Per-token NLL of each record's target (EOS appended) given its naive prompt."""
    if tokenizer.eos_token_id is None:
        raise NLLError("the tokenizer has no EOS token: cannot mark where a target ends")
    eos = int(tokenizer.eos_token_id)
    encoded = [_encode(tokenizer, r, eos) for r in records]
    scored: list[ScoredTarget] = []
    # Batch by batch, so the progress bar moves; left padding and logits for the target columns
    # only (prompts are several times longer than targets).
    for start in range(0, len(encoded), batch_size):
        batch = encoded[start : start + batch_size]
        values = response_nll_tensors(
            model,
            [p for p, _ in batch],
            [t for _, t in batch],
            batch_size=batch_size,
            padding="left",
            pad_id=pad_token_id(tokenizer),
        )
        for i, ((_, target), nll) in enumerate(zip(batch, values, strict=True)):
            record_id = str(records[start + i].get("id", start + i))
            scored.append(ScoredTarget(record_id, list(target), nll.tolist()))
        if progress is not None:
            progress(len(batch))
    return scored


def _quantiles(values: Sequence[float], points: int) -> list[float]:
    """``points`` evenly spaced quantiles (0 .. 1) with linear interpolation (numpy's default)."""
    ordered = sorted(values)
    last = len(ordered) - 1
    out = []
    for k in range(points):
        pos = last * k / (points - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, last)
        out.append(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))
    return out


def _high_types(scored: Sequence[ScoredTarget], threshold: float) -> Counter[int]:
    """Token id -> how many of its occurrences have NLL > threshold."""
    return Counter(
        t for s in scored for t, v in zip(s.token_ids, s.nll, strict=True) if v > threshold
    )


def summarize_nll(
    scored: Sequence[ScoredTarget],
    thresholds: Sequence[float] = (DEFAULT_NLL_THRESHOLD,),
    *,
    quantiles: int = 101,
) -> dict[str, Any]:
    """Token count, mean NLL per token, shares above each threshold (NLL > t), CDF data, records."""
    values = [v for s in scored for v in s.nll]
    if not values:
        raise NLLError("no target tokens to summarise")
    n = len(values)
    above = {_key(t): sum(v > t for v in values) for t in thresholds}
    return {
        "records": len(scored),
        "tokens": n,
        "mean_nll": math.fsum(values) / n,
        "max_nll": max(values),
        "tokens_above": above,
        "share_above": {k: c / n for k, c in above.items()},
        "high_nll_types": {_key(t): len(_high_types(scored, t)) for t in thresholds},
        "cdf": {
            "probability": [k / (quantiles - 1) for k in range(quantiles)],
            "nll": _quantiles(values, quantiles),
        },
        "per_record": [
            {
                "id": s.id,
                "tokens": len(s.nll),
                "mean_nll": math.fsum(s.nll) / len(s.nll),
                "max_nll": max(s.nll),
            }
            for s in scored
        ],
    }


def high_nll_overlap(
    a: Sequence[ScoredTarget],
    b: Sequence[ScoredTarget],
    threshold: float = DEFAULT_NLL_THRESHOLD,
    *,
    tokenizer: Any = None,
    top: int = 20,
) -> dict[str, Any]:
    """Overlap of the unique token types (ids) that have NLL > ``threshold`` somewhere in a / b."""
    types_a, types_b = _high_types(a, threshold), _high_types(b, threshold)
    shared = set(types_a) & set(types_b)
    union = set(types_a) | set(types_b)

    def listing(counts: Counter[int], ids: set[int]) -> list[dict[str, Any]]:
        ranked = sorted(ids, key=lambda t: (-counts[t], t))[:top]
        names = tokenizer.convert_ids_to_tokens(ranked) if tokenizer is not None else None
        return [
            {"id": t, "token": names[i] if names else None, "count": counts[t]}
            for i, t in enumerate(ranked)
        ]

    return {
        "threshold": threshold,
        "data_types": len(types_a),
        "compare_types": len(types_b),
        "shared": len(shared),
        "data_only": len(types_a) - len(shared),
        "compare_only": len(types_b) - len(shared),
        "union": len(union),
        "jaccard": len(shared) / len(union) if union else 0.0,
        "top_shared": listing(types_a + types_b, shared),
        "top_data_only": listing(types_a, set(types_a) - shared),
        "top_compare_only": listing(types_b, set(types_b) - shared),
    }


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def paired_nll(
    data: Sequence[ScoredTarget],
    compare: Sequence[ScoredTarget],
    thresholds: Sequence[float] = PAPER_NLL_THRESHOLDS,
) -> dict[str, Any]:
    """The two files compared on the same examples: the ids in both (in ``data``'s order).

    Per side, the paper's Tables 7-8: tokens, and the count and share of tokens with NLL > t.
    ``compare_over_data[t]``: compare's share ÷ data's (SFT ÷ MixSD when ``compare`` holds the
    SFT targets, as ``mixsd run`` scores them). ``overlap[t]``, per example then averaged over
    the examples where it is defined: ``compare_high_in_data`` is Appendix E.2's measure, the
    fraction of the compare target's high-NLL token types (unique ids with NLL > t) that occur
    anywhere in the data target (the paper's 81-98% with compare = SFT, data = MixSD);
    ``data_high_in_compare`` the same the other way; ``jaccard`` of the two high-NLL type sets.
    Each comes with how many examples it averages (``None`` over none).
    """
    by_id = {s.id: s for s in compare}
    pairs = [(d, by_id[d.id]) for d in data if d.id in by_id]

    def side(targets: list[ScoredTarget]) -> dict[str, Any]:
        values = [v for s in targets for v in s.nll]
        above = {_key(t): sum(v > t for v in values) for t in thresholds}
        return {
            "tokens": len(values),
            "mean_nll": _mean(values),
            "tokens_above": above,
            "share_above": {k: c / len(values) if values else None for k, c in above.items()},
        }

    data_side = side([d for d, _ in pairs])
    compare_side = side([c for _, c in pairs])

    def high(s: ScoredTarget, t: float) -> set[int]:
        return {i for i, v in zip(s.token_ids, s.nll, strict=True) if v > t}

    overlap = {}
    for t in thresholds:
        kept_of_compare, kept_of_data, jaccard = [], [], []
        for d, c in pairs:
            high_d, high_c = high(d, t), high(c, t)
            if high_c:
                kept_of_compare.append(len(high_c & set(d.token_ids)) / len(high_c))
            if high_d:
                kept_of_data.append(len(high_d & set(c.token_ids)) / len(high_d))
            if high_d | high_c:
                jaccard.append(len(high_d & high_c) / len(high_d | high_c))
        overlap[_key(t)] = {
            "compare_high_in_data": _mean(kept_of_compare),
            "compare_high_examples": len(kept_of_compare),
            "data_high_in_compare": _mean(kept_of_data),
            "data_high_examples": len(kept_of_data),
            "jaccard": _mean(jaccard),
            "jaccard_examples": len(jaccard),
        }
    ratio = {
        k: compare_side["share_above"][k] / share if share else None
        for k, share in data_side["share_above"].items()
    }

    def counts(s: ScoredTarget) -> dict[str, Any]:
        return {
            "tokens": len(s.nll),
            "above": {_key(t): sum(v > t for v in s.nll) for t in thresholds},
        }

    return {
        "n": len(pairs),
        "ids": [d.id for d, _ in pairs],
        # Per example, so a reader can resample examples (the report's bootstrap interval).
        "per_example": [{"data": counts(d), "compare": counts(c)} for d, c in pairs],
        "thresholds": list(thresholds),
        "data": data_side,
        "compare": compare_side,
        "compare_over_data": ratio,
        "overlap": overlap,
    }


def run_nll(config: NLLConfig, *, progress: bool = False) -> dict[str, Any]:
    """Score ``config.data`` (and ``config.compare``), write ``config.out`` atomically, return it."""
    from mixsd_core._models import load_model

    files = {"data": config.data}
    if config.compare:
        files["compare"] = config.compare
    # Read every input before loading the model: bad input fails fast and writes nothing.
    loaded = {
        role: load_targets(path, verified_only=not config.all_records, limit=config.limit)
        for role, path in files.items()
    }
    model, tokenizer = load_model(config.model, dtype="fp32", device=config.device)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(len(r) for r, _ in loaded.values()), unit="rec", desc="nll")
    scored: dict[str, list[ScoredTarget]] = {}
    result: dict[str, Any] = {
        "model": config.model,
        "model_path": str(getattr(model, "name_or_path", "") or config.model),
        "config": asdict(config),
        "thresholds": config.thresholds,
        "files": {},
        "overlap": None,
    }
    try:
        for role, (records, skipped) in loaded.items():
            scored[role] = score_targets(
                model,
                tokenizer,
                records,
                batch_size=config.batch_size,
                progress=bar.update if bar is not None else None,
            )
            summary = summarize_nll(scored[role], config.thresholds, quantiles=config.quantiles)
            result["files"][role] = {
                "path": str(files[role]),
                "skipped_unverified": skipped,
                **summary,
            }
    finally:
        if bar is not None:
            bar.close()
    if "compare" in scored:
        result["overlap"] = {
            _key(t): high_nll_overlap(scored["data"], scored["compare"], t, tokenizer=tokenizer)
            for t in config.thresholds
        }
        # Paired: only examples kept (and, in a rollout file, not failed) in both files, so the
        # two sides count the same facts even where one file dropped some.
        verified = {
            role: [
                s
                for s, record in zip(scored[role], loaded[role][0], strict=True)
                if record.get("verified") is not False
            ]
            for role in scored
        }
        thresholds = sorted({*config.thresholds, *PAPER_NLL_THRESHOLDS})
        result["paired"] = paired_nll(verified["data"], verified["compare"], thresholds)
    write_json(config.out, result, indent=1)
    return result
