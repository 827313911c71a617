"""The ``edit`` suite: did the model take a batch of knowledge edits, and what did it keep?

It reads a kgworld edit folder: ``WORLD/edit/`` from ``kgworld gen`` (the small and large presets
write one) or ``OUT/edit/`` from ``kgworld import-mquake``, and scores greedy replies with the
in-domain suite's generation and kgworld verifier (``boxed-or-final-sentence``):

* ``edit/train``: edit accuracy (efficacy), the new object on the edit's own question;
* ``edit/paraphrase``: the same edits asked with held-out wording (generalisation);
* ``edit/multihop``: 2-4 hop questions whose answer the edits change (the MQuAKE idea);
* ``edit/locality``: questions on unedited facts, whose answers must not change;
* ``edit/rewrite``: MEMIT's own efficacy, on the bare completion prompt of each edit's
  ``meta.rewrite`` ("Vroround Stihem was born in"): is the new object the greedy continuation,
  token for token (teacher-forced, no chat template)? ``top1`` counts the first token alone.
  Locate-and-edit methods are edited through that prompt, so it is their home ground, while the
  question splits above are where SFT and MixSD are trained.

For the first three, ``old_answer_share`` is the share of replies that still give the answer of
the original world (``meta.old_answer``): the edit did not take. Aliases count as the answer
(``meta.answer_aliases`` and ``meta.old_answer_aliases``, MQuAKE's ``new_answer_alias`` and
``answer_alias``). Splits missing from the folder (an MQuAKE import has no paraphrase or
locality) are reported as skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from forgetbench._errors import EvalError
from forgetbench._indomain import accuracy_entry, generate_replies, read_split
from mixsd_base import file_sha256

__all__ = ["EDIT_SPLITS", "edit_root", "run_edit"]

# split -> whether its records carry the original world's answer (meta.old_answer)
EDIT_SPLITS: dict[str, bool] = {
    "edit/train": True,
    "edit/paraphrase": True,
    "edit/multihop": True,
    "edit/locality": False,
    "edit/rewrite": True,
}
# edit/rewrite scores the edit requests themselves: the meta.rewrite of edit/train's records.
_FILES = {"edit/rewrite": "edit/train"}


def edit_root(folder: str | Path) -> Path:
    """The folder holding ``edit/``: a world or import folder, or given its ``edit/`` itself."""
    root = Path(folder).expanduser().absolute()
    if (root / "edit").is_dir():
        return root
    if root.name == "edit" and root.is_dir():
        return root.parent
    raise EvalError(
        "no edit/ folder (generate the world with a preset or edit.enabled=true, "
        "or convert MQuAKE data with kgworld import-mquake)",
        path=root,
    )


def _golds(meta: dict[str, Any], answer: Any, field: str, aliases: str, where: str) -> list[str]:
    """The answer and its aliases; a missing or malformed one names the record and field."""
    extra = meta.get(aliases) or []
    if not isinstance(answer, str):
        raise EvalError(f"{where}: field {field!r} must be a string, got {answer!r}")
    if not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
        raise EvalError(f"{where}: field 'meta.{aliases}' must be a list of strings")
    return [answer, *extra]


def _rewrite_scores(
    model: Any, tokenizer: Any, path: Path, records: list[dict[str, Any]], batch_size: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Teacher-forced greedy check of the new (and the old) object after each bare rewrite prompt."""
    import kgworld
    from mixsd_core._continuation import greedy_continuation_matches

    prompts, news, olds = [], [], []
    for number, record in enumerate(records, 1):
        rewrite = kgworld.read_rewrite(record, f"{path}: record {number}")  # a UserError if bad
        prompts.append(rewrite.prompt.replace("{}", rewrite.subject))
        news.append(rewrite.target_new)
        olds.append((rewrite.target_true or "").strip())
    new = greedy_continuation_matches(model, tokenizer, prompts, news, batch_size=batch_size)
    have_old = [i for i, o in enumerate(olds) if o]
    old_matches = greedy_continuation_matches(
        model,
        tokenizer,
        [prompts[i] for i in have_old],
        [olds[i] for i in have_old],
        batch_size=batch_size,
    )
    old = dict(zip(have_old, old_matches, strict=True))
    hits = [m["exact"] for m in new]
    entry = accuracy_entry(hits, "greedy-continuation")
    entry["top1"] = sum(m["top1"] for m in new) / len(new) if new else 0.0
    entry["old_answer_share"] = sum(m["exact"] for m in old.values()) / len(old) if old else 0.0
    rows = [
        {
            "task": "edit/rewrite",
            "id": record.get("id"),
            "prompt": prompt,
            "target": target,
            "acc": float(match["exact"]),
            "top1": float(match["top1"]),
            **({"old_answer": olds[i], "old": float(old[i]["exact"])} if i in old else {}),
        }
        for i, (record, prompt, target, match) in enumerate(
            zip(records, prompts, news, new, strict=True)
        )
    ]
    return entry, rows


def run_edit(
    model: Any,
    tokenizer: Any,
    folder: str | Path,
    *,
    splits: Iterable[str] = tuple(EDIT_SPLITS),
    verifier: str = "boxed-or-final-sentence",
    limit: int | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 256,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]]:
    """Scores per edit split. Returns ``(scores, per-sample records, {file: sha256})``."""
    import kgworld

    root = edit_root(folder)
    scores: dict[str, Any] = {}
    samples: list[dict[str, Any]] = []
    hashes: dict[str, str] = {}
    for split in splits:
        if split not in EDIT_SPLITS:
            raise EvalError(f"unknown edit split {split!r}; known: {', '.join(EDIT_SPLITS)}")
        source = _FILES.get(split, split)
        if not (root / f"{source}.jsonl").is_file():
            scores[split] = {"skipped": f"{root / source}.jsonl not in the edit folder"}
            continue
        path, records = read_split(root, source, limit)
        hashes[str(path)] = file_sha256(path)
        if split == "edit/rewrite":
            entry, rows = _rewrite_scores(model, tokenizer, path, records, batch_size)
            scores[split] = entry
            samples.extend(rows)
            continue
        replies = generate_replies(
            model, tokenizer, records, batch_size=batch_size, max_new_tokens=max_new_tokens
        )
        hits: list[bool] = []
        olds: list[bool] = []
        for number, (record, reply) in enumerate(zip(records, replies, strict=True), 1):
            where = f"{path}: record {number}"
            meta = record.get("meta") or {}
            golds = _golds(meta, record["answer"], "answer", "answer_aliases", where)
            ok = any(kgworld.verify(reply, gold, verifier) for gold in golds)
            hits.append(ok)
            sample = {
                "task": split,
                "id": record.get("id"),
                "target": record["answer"],
                "acc": float(ok),
                "replies": [reply],
            }
            if EDIT_SPLITS[split]:
                old_answer = meta.get("old_answer")
                old = _golds(meta, old_answer, "meta.old_answer", "old_answer_aliases", where)
                olds.append(any(kgworld.verify(reply, gold, verifier) for gold in old))
                sample.update(old_answer=old_answer, old=float(olds[-1]))
            samples.append(sample)
        scores[split] = accuracy_entry(hits, verifier)
        if EDIT_SPLITS[split]:
            scores[split]["old_answer_share"] = sum(olds) / len(olds) if olds else 0.0
    return scores, samples, hashes
