"""MQuAKE-format JSON (Zhong et al., 2023) as edit records, so the paper's real setting runs.

Input: a JSON list of cases, each (fields with ``?`` are optional)::

    {"case_id"?: 1,
     "requested_rewrite": [{"prompt": "{} is a citizen of", "subject": "Danielle Darrieux",
                            "target_new": {"str": "Japan"}, "target_true": {"str": "France"},
                            "question"?: "What is the country of citizenship of Danielle Darrieux?",
                            "relation_id"?: "P27"}, ...],
     "questions": ["...", ...], "answer": "Paris", "new_answer": "Tokyo",
     "answer_alias"?: ["..."], "new_answer_alias"?: ["..."],
     "new_single_hops"?: [{"cloze": "...", "answer": "..."}, ...]}

Output, in the shared record schema (the layout of a world's ``edit/``):

* one ``edit`` record per distinct requested rewrite (a rewrite repeated across cases is kept
  once; conflicting rewrites are kept as given). ``prompt`` is the rewrite's ``question`` when the
  case has one, else the cloze "Fill in the blank: <prompt with the subject> ___."; ``target``
  is the filled statement with the new object, then ``\\boxed{new}``; ``meta.rewrite`` is
  ``{"prompt", "subject", "target_new", "target_true"}`` with plain strings, as kgworld writes it.
* one ``edit-multihop`` record per case: ``questions[0]`` as the prompt, ``new_answer`` as the
  answer, ``meta.old_answer`` = ``answer``, ``meta.questions`` = every question, aliases in
  ``meta.answer_aliases`` / ``meta.old_answer_aliases``, ``meta.edit_ids`` its edit records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kgworld._config import ONE_SENTENCE_INSTRUCTION, DataError, kgworld_errors
from kgworld._kgfact import Record, _record, fact_target
from mixsd_base import file_sha256, read_json

# The one-sentence instruction fits the statement targets written here (MQuAKE imports keep the
# form they had before kgworld's KGFact default became the paper's step-by-step wording).
DEFAULT_INSTRUCTION = ONE_SENTENCE_INSTRUCTION


class _Case:
    """Typed access to one case; every error names the file, the case index and the field."""

    def __init__(self, path: Path, index: int, data: Any):
        self.path, self.case = path, f"case {index}"
        if not isinstance(data, dict):
            raise DataError(
                f"{self.case}: expected an object, got {type(data).__name__}", path=path
            )
        self.data = data

    def fail(self, field: str, problem: str) -> DataError:
        return DataError(f"{self.case}: field {field!r}: {problem}", path=self.path)

    def text(self, node: Any, field: str) -> str:
        if not isinstance(node, str) or not node.strip():
            raise self.fail(field, f"expected a non-empty string, got {node!r}")
        return node

    def get(self, node: dict[str, Any], key: str, field: str) -> Any:
        if key not in node:
            raise self.fail(field, "missing")
        return node[key]

    def texts(self, node: Any, field: str) -> list[str]:
        if not isinstance(node, list):
            raise self.fail(field, f"expected a list, got {type(node).__name__}")
        return [self.text(item, f"{field}[{i}]") for i, item in enumerate(node)]

    def rewrites(self) -> list[dict[str, str]]:
        raw = self.get(self.data, "requested_rewrite", "requested_rewrite")
        if not isinstance(raw, list) or not raw:
            raise self.fail("requested_rewrite", "expected a non-empty list")
        rewrites = []
        for i, item in enumerate(raw):
            field = f"requested_rewrite[{i}]"
            if not isinstance(item, dict):
                raise self.fail(field, "expected an object")
            prompt = self.text(self.get(item, "prompt", f"{field}.prompt"), f"{field}.prompt")
            if prompt.count("{}") != 1:
                raise self.fail(f"{field}.prompt", f"must contain '{{}}' once, got {prompt!r}")
            rewrite = {"prompt": prompt}
            rewrite["subject"] = self.text(
                self.get(item, "subject", f"{field}.subject"), f"{field}.subject"
            )
            for key in ("target_new", "target_true"):
                node = self.get(item, key, f"{field}.{key}")
                if not isinstance(node, dict):
                    raise self.fail(f"{field}.{key}", 'expected an object {"str": ...}')
                rewrite[key] = self.text(
                    self.get(node, "str", f"{field}.{key}.str"), f"{field}.{key}.str"
                )
            for key in ("question", "relation_id"):
                if item.get(key) is not None:
                    rewrite[key] = self.text(item[key], f"{field}.{key}")
            rewrites.append(rewrite)
        return rewrites

    def aliases(self, key: str) -> list[str]:
        return self.texts(self.data[key], key) if self.data.get(key) is not None else []

    def single_hop_statement(self) -> str | None:
        """The new chain as sentences ("<cloze> <answer>."), when ``new_single_hops`` has it."""
        hops = self.data.get("new_single_hops")
        if not isinstance(hops, list) or not hops:
            return None
        parts = []
        for hop in hops:
            if not (isinstance(hop, dict) and isinstance(hop.get("cloze"), str)):
                return None
            if not isinstance(hop.get("answer"), str):
                return None
            parts.append(f"{hop['cloze'].strip()} {hop['answer'].strip()}.")
        return " ".join(parts)


def _read_cases(path: Path) -> list[Any]:
    with kgworld_errors(DataError):
        data = read_json(path, what="MQuAKE file")
    if not isinstance(data, list):
        raise DataError("expected a JSON list of MQuAKE cases", path=path)
    return data


def _with_instruction(question: str, instruction: str) -> str:
    return f"{question}\n\n{instruction}" if instruction else question


def load_mquake(path: str | Path, *, instruction: str = DEFAULT_INSTRUCTION) -> list[Record]:
    """MQuAKE cases as records: the ``edit`` records first, then one ``edit-multihop`` per case.

    ``instruction`` is appended to every question after a blank line, as in KGFact ('' for none).
    """
    path = Path(path).absolute()
    cases = [_Case(path, i, data) for i, data in enumerate(_read_cases(path))]
    rewrites = [case.rewrites() for case in cases]
    width = max(6, len(str(max(sum(map(len, rewrites)), len(cases)))))
    edits: dict[tuple[str, ...], Record] = {}
    case_ids: dict[tuple[str, ...], list[object]] = {}  # shared with each edit's meta
    multihop: list[Record] = []
    for index, (case, requested) in enumerate(zip(cases, rewrites, strict=True)):
        case_id = case.data.get("case_id", index)
        edit_ids: list[str] = []
        for rewrite in requested:
            key = tuple(rewrite[k] for k in ("prompt", "subject", "target_new", "target_true"))
            if key not in edits:
                case_ids[key] = []
                edits[key] = _edit_record(rewrite, len(edits), width, instruction, case_ids[key])
            case_ids[key].append(case_id)
            edit_ids.append(str(edits[key]["id"]))
        questions = case.texts(case.get(case.data, "questions", "questions"), "questions")
        if not questions:
            raise case.fail("questions", "expected at least one question")
        new = case.text(case.get(case.data, "new_answer", "new_answer"), "new_answer")
        old = case.text(case.get(case.data, "answer", "answer"), "answer")
        hops = case.data.get("new_single_hops")
        meta = {
            "hops": len(hops) if isinstance(hops, list) and hops else None,
            "old_answer": old,
            "questions": questions,
            "answer_aliases": case.aliases("new_answer_alias"),
            "old_answer_aliases": case.aliases("answer_alias"),
            "edit_ids": list(dict.fromkeys(edit_ids)),
            "source": "mquake",
            "case_id": case_id,
        }
        statement = case.single_hop_statement() or f"The answer is {new}."
        prompt = _with_instruction(questions[0], instruction)
        target = fact_target([statement], new, "statement")
        multihop.append(_record("edit-multihop", index, width, prompt, target, new, None, meta))
    return [*edits.values(), *multihop]


def _edit_record(
    rewrite: dict[str, str], n: int, width: int, instruction: str, case_ids: list[object]
) -> Record:
    filled = rewrite["prompt"].replace("{}", rewrite["subject"])
    question = rewrite.get("question") or f"Fill in the blank: {filled} ___."
    new = rewrite["target_new"]
    meta = {
        "relation": rewrite.get("relation_id"),
        "subject": rewrite["subject"],
        "old_answer": rewrite["target_true"],
        "rewrite": {k: rewrite[k] for k in ("prompt", "subject", "target_new", "target_true")},
        "source": "mquake",
        "case_ids": case_ids,  # filled in as later cases repeat this rewrite
    }
    prompt = _with_instruction(question, instruction)
    return _record(
        "edit",
        n,
        width,
        prompt,
        fact_target([f"{filled} {new}."], new, "statement"),
        new,
        None,
        meta,
    )


def import_mquake(
    path: str | Path,
    out: str | Path,
    *,
    instruction: str = DEFAULT_INSTRUCTION,
    overwrite: bool = False,
) -> Path:
    """Write ``out/edit/{train,multihop}.jsonl`` and ``out/manifest.json`` from an MQuAKE file.

    The folder is laid out like a world's ``edit/``, so ``forgetbench eval --suites edit
    --edits OUT`` and ``mixsd train --data OUT/edit/train.jsonl`` read it as they read a world.
    """
    from kgworld._world import (
        MQUAKE_KIND,
        _jsonl_chunks,
        _version,
        check_output_dir,
        write_folder,
    )

    source = Path(path).absolute()
    check_output_dir(Path(out).absolute(), overwrite=overwrite)  # fail before any work
    records = load_mquake(source, instruction=instruction)
    train = [r for r in records if r["split"] == "edit"]
    multihop = [r for r in records if r["split"] == "edit-multihop"]
    manifest = {
        "package": "kgworld",
        "version": _version(),
        "kind": MQUAKE_KIND,
        "source": str(source),
        "source_sha256": file_sha256(source),
        "instruction": instruction,
        "counts": {"edit/train": len(train), "edit/multihop": len(multihop)},
    }
    files = iter(
        [
            ("edit/train.jsonl", _jsonl_chunks(train)),
            ("edit/multihop.jsonl", _jsonl_chunks(multihop)),
        ]
    )
    return write_folder(out, files, manifest, overwrite=overwrite)
