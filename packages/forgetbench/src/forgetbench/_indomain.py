"""In-domain accuracy: KGFact train / paraphrase / twohop / retrieval, KGFunc test / unseen, and
the splits of an imported question-answer file (``kgworld import-qa``): ``qa/train`` (the
questions trained on) and ``qa/validation`` (held out: the factuality probe, real-world
knowledge the training never saw, scored next to the held-out benchmarks).

Each record's naive prompt (its context passage, then the question; the same user turn the
trainers' rollouts use) goes through the chat template, is decoded greedily in batches, and the
reply is checked with a kgworld verifier chosen by the scorer. ``ours`` (the default): KGFact
``boxed-or-final-sentence`` (small models rarely box: the gold as a phrase of the final sentence
counts when there is no box at all), KGFunc ``integer``, QA ``qa-normalized``. ``paper``: the
authors' in-domain scorer (FACTS.md §5), KGFact ``extract-loose``, KGFunc ``extract-strict``, QA
``qa-paper`` (their SimpleQA scorer). Per-split overrides win. A reply passes when it matches
the record's answer or one of its aliases (``meta.answer_aliases``, ``kgworld.record_answers``).
The QA splits are scored only in a folder that has ``qa/``; a QA import's folder (no ``kgfact/``)
scores nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from forgetbench._errors import EvalError
from mixsd_base import file_sha256, read_jsonl

__all__ = [
    "INDOMAIN_SCORERS",
    "INDOMAIN_SPLITS",
    "QA_SPLITS",
    "accuracy_entry",
    "generate_replies",
    "run_indomain",
]

# split -> kgworld verifier mode
INDOMAIN_SPLITS: dict[str, str] = {
    "kgfact/train": "boxed-or-final-sentence",
    "kgfact/paraphrase": "boxed-or-final-sentence",
    "kgfact/twohop": "boxed-or-final-sentence",
    "kgfact/retrieval": "boxed-or-final-sentence",
    "kgfunc/test": "integer",
    "kgfunc/unseen": "integer",
}
# The splits of a question-answer import (kgworld import-qa), in folders that have qa/.
QA_SPLITS: dict[str, str] = {"qa/train": "qa-normalized", "qa/validation": "qa-normalized"}
# What the authors score each family with (eval_output.py; SimpleQA: their simpleqa.py).
_PAPER = {"kgfact": "extract-loose", "kgfunc": "extract-strict", "qa": "qa-paper"}
# scorer -> split -> kgworld verifier mode; "paper" is the authors' scorer
INDOMAIN_SCORERS: dict[str, dict[str, str]] = {
    "ours": {**INDOMAIN_SPLITS, **QA_SPLITS},
    "paper": {split: _PAPER[split.partition("/")[0]] for split in (*INDOMAIN_SPLITS, *QA_SPLITS)},
}


def default_splits(world: Path) -> list[str]:
    """The splits scored when none are named: KGFact and KGFunc (missing ones reported as
    skipped), and the QA splits where the folder has ``qa/`` (only those in a QA import)."""
    if not (world / "qa").is_dir():
        return list(INDOMAIN_SPLITS)
    if not (world / "kgfact").is_dir():
        return list(QA_SPLITS)
    return [*INDOMAIN_SPLITS, *QA_SPLITS]


def read_split(world: Path, split: str, limit: int | None) -> tuple[Path, list[dict[str, Any]]]:
    path = world / f"{split}.jsonl"
    if not path.is_file():
        raise EvalError(f"not found (is {world} a kgworld output folder?)", path=path)
    records = read_jsonl(
        path,
        required=("prompt", "answer"),
        types={"prompt": str, "answer": str},
        allow_empty=True,
        what=f"{split} split",
    )
    return path, records[:limit] if limit is not None else records


def generate_replies(
    model: Any,
    tokenizer: Any,
    records: list[dict[str, Any]],
    *,
    batch_size: int,
    max_new_tokens: int,
) -> list[str]:
    """Greedy replies to each record's naive prompt (context, then question), in record order."""
    from mixsd_core import greedy_generate, render_prompts

    prompts = [render_prompts(tokenizer, r)[0] for r in records]
    outputs = greedy_generate(
        model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size
    )
    return [tokenizer.decode(ids, skip_special_tokens=True) for ids in outputs]


def accuracy_entry(hits: list[bool], verifier: str) -> dict[str, Any]:
    """The suite's score record: accuracy, its binomial stderr, n."""
    n = len(hits)
    acc = sum(hits) / n if n else 0.0
    return {
        "metric": "acc",
        "verifier": verifier,
        "score": acc,
        "stderr": (acc * (1 - acc) / (n - 1)) ** 0.5 if n > 1 else None,
        "n": n,
    }


def run_indomain(
    model: Any,
    tokenizer: Any,
    world: str | Path,
    *,
    splits: Iterable[str] | None = None,
    scorer: str = "ours",
    verifiers: dict[str, str] | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 256,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]]:
    """Accuracy per split. Returns ``(scores, per-sample records, {file: sha256})``.

    ``splits`` defaults to :func:`default_splits`. ``scorer`` picks each split's verifier
    (:data:`INDOMAIN_SCORERS`); ``verifiers`` overrides single splits. Each scored split records
    the verifier it used. Splits missing from the world folder are reported as skipped; the
    others score in [0, 1].
    """
    import kgworld

    root = Path(world).expanduser().absolute()
    if not root.is_dir():
        raise EvalError("world folder not found", path=root)
    if scorer not in INDOMAIN_SCORERS:
        raise EvalError(
            f"unknown in-domain scorer {scorer!r}; known: {', '.join(INDOMAIN_SCORERS)}"
        )
    modes = {**INDOMAIN_SCORERS[scorer], **(verifiers or {})}
    scores: dict[str, Any] = {}
    samples: list[dict[str, Any]] = []
    hashes: dict[str, str] = {}
    for split in default_splits(root) if splits is None else splits:
        if split not in modes:
            raise EvalError(f"unknown in-domain split {split!r}; known: {', '.join(modes)}")
        if not (root / f"{split}.jsonl").is_file():
            scores[split] = {"skipped": f"{root / split}.jsonl not in the world folder"}
            continue
        path, records = read_split(root, split, limit)
        hashes[str(path)] = file_sha256(path)
        tick = time.monotonic()
        replies = generate_replies(
            model, tokenizer, records, batch_size=batch_size, max_new_tokens=max_new_tokens
        )
        hits = []
        verifier = kgworld.get_verifier(modes[split])
        for record, reply in zip(records, replies, strict=True):
            ok = kgworld.verify_record(reply, record, verifier)
            hits.append(ok)
            samples.append(
                {
                    "task": split,
                    "id": record.get("id"),
                    "target": record["answer"],
                    "acc": float(ok),
                    "replies": [reply],
                }
            )
        scores[split] = {**accuracy_entry(hits, modes[split]), "seconds": time.monotonic() - tick}
    return scores, samples, hashes
