"""Question-answer files as training data: SimpleQA's CSV (``metadata, problem, answer``) and
any CSV / JSONL / Parquet table with named question and answer columns.

Output, in the shared record schema (a folder laid out like a world's splits)::

    manifest.json     kind "qa-import", the source file and its sha256, columns, counts, skipped
    qa/train.jsonl    the rows trained on
    qa/validation.jsonl  held-out rows (never trained on): the factuality probe

One record per distinct question: ``prompt`` is the question, a blank line, then the
instruction; ``target`` is the KGFact answer form, ``The answer is X.``, a blank line,
``\\boxed{X}``; ``answer`` is X; ``meta`` holds the source row, the aliases (``answer_aliases``)
and the row's other columns (SimpleQA's ``metadata`` read as the dict it spells). A row's split
is decided by the sha256 of the seed and its question alone (never ``hash()``), so it does not
depend on the row order or on which other rows the file holds.

Bad input is one :class:`DataError` naming the file, the row (and its line) and the column, and
nothing is written: a missing column, an empty question or answer, a question repeated with a
different answer, a non-UTF-8 file, a truncated row. With ``skip_bad_rows`` a bad row is left
out and listed (``QAImport.skipped``, the manifest's ``skipped``) instead; a question repeated
with the same answer is kept once and counted (``duplicates``).
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgworld._config import DataError
from kgworld._kgfact import Record
from mixsd_base import file_sha256

__all__ = ["QA_INSTRUCTION", "QAImport", "import_qa", "in_validation", "load_qa", "qa_target"]

# The authors' SimpleQA prompt asks for a concise answer in \boxed{} (FACTS.md §5).
QA_INSTRUCTION = "Answer concisely and put your final answer within \\boxed{}."
QA_SPLITS = ("qa/train", "qa/validation")
# Tried in order when no question column is named: SimpleQA's, then the common name.
QUESTION_COLUMNS = ("problem", "question")
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}


@dataclass
class QAImport:
    """What :func:`load_qa` read: the records of each split, and what it left out."""

    train: list[Record]
    validation: list[Record]
    columns: dict[str, str | None]  # role (question, answer, aliases) -> column name
    format: str
    rows: int  # data rows read (bad ones included)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {row, line, column, problem}
    duplicates: int = 0  # rows repeating an earlier question with the same answer


class _BadRow(Exception):
    """One row that cannot be used (turned into a DataError, or skipped)."""

    def __init__(self, row: int, line: int | None, column: str | None, problem: str):
        super().__init__(problem)
        self.row, self.line, self.column, self.problem = row, line, column, problem

    def error(self, path: Path) -> DataError:
        return DataError(
            f"row {self.row}: {self.problem}", path=path, line=self.line, field=self.column
        )

    def entry(self) -> dict[str, Any]:
        return {"row": self.row, "line": self.line, "column": self.column, "problem": self.problem}


Row = tuple[int, int | None, dict[str, Any] | None, _BadRow | None]  # row, line, values, problem


def qa_target(answer: str) -> str:
    """The canonical SFT target: KGFact's answer form (``The answer is X.``, a blank line,
    ``\\boxed{X}``), without a second period after an answer that ends in one."""
    period = "" if answer.endswith(".") else "."
    return f"The answer is {answer}{period}\n\n\\boxed{{{answer}}}"


def _format(path: Path) -> str:
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"unknown file type {path.suffix!r}; expected one of {', '.join(FORMATS)}", path=path
        )
    return kind


def _decode(path: Path) -> str:
    """The file as text. Bytes that are not UTF-8 become lone surrogates (``surrogateescape``),
    so the row and column holding one can be named (:func:`_not_utf8`) instead of the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read the QA file ({exc.strerror})", path=path) from None
    return data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")


def _not_utf8(text: str) -> str | None:
    """``not UTF-8 (byte 0x..)`` when ``text`` holds a byte :func:`_decode` could not read."""
    bad = next((ch for ch in text if "\udc80" <= ch <= "\udcff"), None)
    return None if bad is None else f"not UTF-8 text (byte {ord(bad) - 0xDC00:#04x})"


def _csv_rows(path: Path) -> tuple[list[str], Iterator[Row]]:
    """The header and the data rows of a CSV file (UTF-8, an optional byte-order mark)."""
    text = _decode(path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DataError(f"unreadable CSV header ({exc})", path=path, line=1) from None
    if not header:
        raise DataError("empty file: expected a header row", path=path, line=1)
    header = [name.strip() for name in header]
    for name in header:
        if _not_utf8(name):
            raise DataError(f"header: {_not_utf8(name)}", path=path, line=1)

    def rows() -> Iterator[Row]:
        row = 0
        while True:
            start = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # an unterminated quote: the file was cut inside a row
                row += 1
                yield row, start, None, _BadRow(row, start, None, f"truncated row ({exc})")
                return
            if not values:
                continue  # a blank line
            row += 1
            if len(values) < len(header):
                missing = header[len(values)]
                problem = f"truncated row: {len(values)} of {len(header)} columns"
                yield row, start, None, _BadRow(row, start, missing, problem)
            elif len(values) > len(header):
                problem = f"{len(values)} values for {len(header)} columns"
                yield row, start, None, _BadRow(row, start, None, problem)
            else:
                yield row, start, dict(zip(header, values, strict=True)), None

    return header, rows()


def _jsonl_rows(path: Path) -> tuple[list[str] | None, Iterator[Row]]:
    """The rows of a JSON Lines file, each a JSON object (its keys are its columns)."""
    text = _decode(path)

    def rows() -> Iterator[Row]:
        row = 0
        for line, raw in enumerate(text.split("\n"), start=1):
            if not raw.strip():
                continue
            row += 1
            try:
                values = json.loads(raw)
            except json.JSONDecodeError as exc:
                yield row, line, None, _BadRow(row, line, None, f"truncated row ({exc.msg})")
                continue
            if not isinstance(values, dict):
                problem = f"expected a JSON object, got {type(values).__name__}"
                yield row, line, None, _BadRow(row, line, None, problem)
                continue
            yield row, line, values, None

    return None, rows()


def _parquet_rows(path: Path) -> tuple[list[str], Iterator[Row]]:
    """The rows of a Parquet file (read with pyarrow, which kgworld does not install)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            "reading Parquet needs pyarrow (pip install pyarrow), or convert the file to CSV or "
            "JSONL",
            path=path,
        ) from None
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"not a readable Parquet file ({exc})", path=path) from None
    values = table.to_pylist()
    return list(table.column_names), ((i, None, row, None) for i, row in enumerate(values, start=1))


def _text(values: dict[str, Any], column: str, row: int, line: int | None) -> str:
    """A required cell as a stripped, non-empty string (JSON numbers read as their text)."""
    if column not in values:
        raise _BadRow(row, line, column, "missing column")
    value = values[column]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        if value is None:
            raise _BadRow(row, line, column, "empty value")
        raise _BadRow(row, line, column, f"expected text, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise _BadRow(row, line, column, "empty value")
    return text


def _aliases(value: Any, column: str, row: int, line: int | None) -> list[str]:
    """An aliases cell: a list of strings, a JSON list written as text, or ``a | b`` text."""
    if value is None or value == "":
        return []
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _BadRow(row, line, column, "not a JSON list of strings") from None
    if isinstance(value, str):
        value = value.split("|")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _BadRow(row, line, column, "expected a list of strings or 'a | b' text")
    return [v.strip() for v in value if v.strip()]


def _extra(value: Any) -> Any:
    """Another column's cell, kept in ``meta.fields``: SimpleQA's ``metadata`` is a Python dict
    written as text (``{'topic': ..., 'urls': [...]}``), read back as one where it parses."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            parsed = ast.literal_eval(value)  # literals only: never runs code
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return value
        return parsed if isinstance(parsed, dict) else value
    return value


def _question_key(question: str) -> str:
    """Questions that differ only in spacing are the same question."""
    return " ".join(question.split())


def in_validation(question: str, seed: int, val_fraction: float) -> bool:
    """Whether a question is held out: the sha256 of the seed and the question, read as a
    fraction in [0, 1), is below ``val_fraction``."""
    digest = hashlib.sha256(f"{seed}\n{_question_key(question)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < val_fraction


def _pick(columns: list[str], given: str | None, defaults: tuple[str, ...]) -> str:
    """The column to read: the one given, else the first default the header has."""
    if given is not None:
        return given
    return next((c for c in defaults if c in columns), defaults[0])


def load_qa(
    path: str | Path,
    *,
    question_col: str | None = None,
    answer_col: str = "answer",
    aliases_col: str | None = None,
    skip_bad_rows: bool = False,
    val_fraction: float = 0.1,
    seed: int = 42,
    instruction: str = QA_INSTRUCTION,
) -> QAImport:
    """Read a question-answer file into train and validation records (see the module note).

    ``question_col`` defaults to ``problem`` (SimpleQA's) when the file has it, else
    ``question``; ``aliases_col`` names an optional column of other accepted answers.
    """
    source = Path(path).absolute()
    if not 0 <= val_fraction < 1:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if not source.is_file():
        raise DataError("QA file not found", path=source)
    kind = _format(source)
    reader = {"csv": _csv_rows, "jsonl": _jsonl_rows, "parquet": _parquet_rows}[kind]
    columns, rows = reader(source)
    if columns is None:  # JSONL has no header: the first object's keys choose the default
        listed = list(rows)
        rows = iter(listed)
        keys = next((list(values) for _, _, values, _ in listed if values is not None), [])
        question_col = _pick(keys, question_col, QUESTION_COLUMNS)
    else:  # a header: a column it lacks is one error before any row
        question_col = _pick(columns, question_col, QUESTION_COLUMNS)
    wanted = [question_col, answer_col] + ([aliases_col] if aliases_col else [])
    missing = [c for c in wanted if columns is not None and c not in columns]
    if missing:
        raise DataError(
            f"no column {missing[0]!r}; the file has: {', '.join(columns or [])}",
            path=source,
            line=1 if kind == "csv" else None,
            field=missing[0],
        )
    roles = {"question": question_col, "answer": answer_col, "aliases": aliases_col}
    result = QAImport([], [], roles, kind, 0)
    first: dict[str, tuple[int, str]] = {}  # question key -> (row, answer)
    kept: list[tuple[int, str, str, list[str], dict[str, Any]]] = []
    for row, line, values, bad in rows:
        result.rows = row
        try:
            if bad is not None:
                raise bad
            assert values is not None
            for column, value in values.items():
                for cell in value if isinstance(value, list) else [value]:
                    problem = _not_utf8(cell) if isinstance(cell, str) else None
                    if problem:
                        raise _BadRow(row, line, column, problem)
            question = _text(values, question_col, row, line)
            answer = _text(values, answer_col, row, line)
            aliases = (
                _aliases(values.get(aliases_col), aliases_col, row, line) if aliases_col else []
            )
            key = _question_key(question)
            if key in first:
                earlier, earlier_answer = first[key]
                if earlier_answer != answer:
                    problem = (
                        f"the question of row {earlier} again, with answer {answer!r} "
                        f"instead of {earlier_answer!r}"
                    )
                    raise _BadRow(row, line, answer_col, problem)
                result.duplicates += 1
                continue
        except _BadRow as exc:
            if not skip_bad_rows:
                raise exc.error(source) from None
            result.skipped.append(exc.entry())
            continue
        first[key] = (row, answer)
        extra = {k: _extra(v) for k, v in values.items() if k not in wanted}
        kept.append((row, question, answer, aliases, extra))
    width = max(6, len(str(result.rows)))
    for row, question, answer, aliases, extra in kept:
        held_out = in_validation(question, seed, val_fraction)
        record = {
            "id": f"qa-{row:0{width}d}",
            "prompt": f"{question}\n\n{instruction}" if instruction else question,
            "target": qa_target(answer),
            "answer": answer,
            "context": None,
            "split": "validation" if held_out else "train",
            "meta": {
                "source": "qa",
                "row": row,
                "question": question,
                "answer_aliases": aliases,
                "fields": extra,
            },
        }
        (result.validation if held_out else result.train).append(record)
    if not result.train:
        raise DataError(
            f"no training rows ({result.rows} rows read, {len(result.skipped)} skipped, "
            f"{len(result.validation)} held out)",
            path=source,
        )
    return result


def import_qa(
    path: str | Path,
    out: str | Path,
    *,
    question_col: str | None = None,
    answer_col: str = "answer",
    aliases_col: str | None = None,
    skip_bad_rows: bool = False,
    val_fraction: float = 0.1,
    seed: int = 42,
    instruction: str = QA_INSTRUCTION,
    overwrite: bool = False,
) -> Path:
    """Write ``out/qa/{train,validation}.jsonl`` and ``out/manifest.json`` from a QA file,
    atomically (a hidden folder renamed into place when complete); returns ``out``.

    ``mixsd run`` reads the folder as it reads a world (``data.split: qa/train``), and
    ``forgetbench eval --world OUT`` scores both splits in its in-domain suite.
    """
    from kgworld._world import QA_KIND, _jsonl_chunks, _version, check_output_dir, write_folder

    source = Path(path).absolute()
    check_output_dir(Path(out).absolute(), overwrite=overwrite)  # fail before any work
    data = load_qa(
        source,
        question_col=question_col,
        answer_col=answer_col,
        aliases_col=aliases_col,
        skip_bad_rows=skip_bad_rows,
        val_fraction=val_fraction,
        seed=seed,
        instruction=instruction,
    )
    manifest = {
        "package": "kgworld",
        "version": _version(),
        "kind": QA_KIND,
        "source": str(source),
        "source_sha256": file_sha256(source),
        "format": data.format,
        "columns": data.columns,
        "instruction": instruction,
        "seed": seed,
        "val_fraction": val_fraction,
        "counts": {
            "rows": data.rows,
            "qa/train": len(data.train),
            "qa/validation": len(data.validation),
            "skipped": len(data.skipped),
            "duplicates": data.duplicates,
        },
        "skipped": data.skipped,
    }
    files = iter(
        [
            ("qa/train.jsonl", _jsonl_chunks(data.train)),
            ("qa/validation.jsonl", _jsonl_chunks(data.validation)),
        ]
    )
    return write_folder(out, files, manifest, overwrite=overwrite)
