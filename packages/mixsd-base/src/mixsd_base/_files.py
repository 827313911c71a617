"""Files: atomic writes, JSON Lines with line-numbered errors, content hashes, manifests.

An output appears under its final name only once complete (written to a sibling temporary
file, then renamed), so an interrupted run never leaves a half-written file that looks done.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

from mixsd_base._errors import DataError

__all__ = [
    "atomic_path",
    "atomic_write",
    "check_output",
    "dump_jsonl_line",
    "file_sha256",
    "iter_jsonl",
    "package_versions",
    "read_json",
    "read_jsonl",
    "read_text",
    "text_sha256",
    "write_json",
    "write_jsonl",
    "write_text",
]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it to ``path`` when the block succeeds.

    For writers that need a file name (``save_file``, ``torch.save``). On an error the temporary
    file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _remove_dead_temporaries(path: Path) -> None:
    """Remove the temporary siblings of ``path`` whose writer died before its rename (a killed
    run): a resumed run rewrites the file and must not leave them behind. A live writer's is
    kept."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 : -len(".tmp")]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and belongs to someone else
        return True
    return True


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing (UTF-8 in text mode); rename on success."""
    with atomic_path(path) as tmp:
        encoding = None if "b" in mode else "utf-8"
        with open(tmp, mode, encoding=encoding, newline=None if encoding is None else "\n") as f:
            yield f


def check_output(path: str | Path, *, folder: bool = False, what: str = "output") -> Path:
    """Fail now, naming the path, if ``path`` (a file, or with ``folder`` a folder) could not be
    written later: it is the wrong kind, a folder on its way is a file, or the folder that would
    hold it is not writable. Commands call this before any work, so a bad output path costs
    nothing and writes nothing. Returns the absolute path.
    """
    path = Path(path).expanduser().absolute()
    if path.exists() and path.is_dir() != folder:
        found = "a folder" if path.is_dir() else "a file"
        raise DataError(
            f"{what} is {found}, expected {'a folder' if folder else 'a file'}", path=path
        )
    # The folder the writes land in: the output folder itself, or the file's folder; when it
    # does not exist yet, its nearest existing ancestor (the one the folders are created in).
    holder = path if folder else path.parent
    while not holder.exists() and holder != holder.parent:
        holder = holder.parent
    if not holder.is_dir():
        raise DataError(f"a file, not a folder: cannot write {what} {path} in it", path=holder)
    if not os.access(holder, os.W_OK | os.X_OK):
        raise DataError(f"folder not writable: cannot write {what} {path}", path=holder)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically; returns the path."""
    with atomic_write(path) as f:
        f.write(text)
    return Path(path)


def write_json(
    path: str | Path,
    obj: Any,
    *,
    indent: int | None = 2,
    sort_keys: bool = False,
    default: Callable[[Any], Any] | None = None,
) -> Path:
    """Write one JSON document atomically (UTF-8, non-ASCII kept, trailing newline).

    ``default`` turns values JSON cannot hold into ones it can (``str`` for a manifest that
    records whatever a config holds), as in :func:`json.dumps`.
    """
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, ensure_ascii=False, default=default)
    return write_text(path, text + "\n")


def dump_jsonl_line(record: Mapping[str, Any]) -> str:
    """One record as one JSON line (compact, non-ASCII kept, newline-terminated)."""
    return json.dumps(record, ensure_ascii=False) + "\n"


def write_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]]) -> int:
    """Write records as JSON Lines atomically; returns how many were written."""
    count = 0
    with atomic_write(path) as f:
        for record in records:
            f.write(dump_jsonl_line(record))
            count += 1
    return count


def read_text(path: str | Path, *, what: str = "file") -> str:
    """Read a UTF-8 text file (gzip-compressed when its name ends in ``.gz``); a missing,
    unreadable or non-UTF-8 file is a :class:`DataError`."""
    path = Path(path)
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":  # data packages ship JSONL gzipped (HumanEval.jsonl.gz)
            data = gzip.decompress(data)
    except (gzip.BadGzipFile, EOFError, zlib.error):
        raise DataError(f"not a readable gzip {what}", path=path) from None
    except FileNotFoundError:
        raise DataError(f"{what} not found", path=path) from None
    except IsADirectoryError:
        raise DataError(f"expected a {what}, found a folder", path=path) from None
    except OSError as exc:
        raise DataError(f"cannot read {what} ({exc.strerror})", path=path) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})",
            path=path,
            line=line,
        ) from None


def read_json(
    path: str | Path,
    *,
    required: Sequence[str] = (),
    types: Mapping[str, type | tuple[type, ...]] | None = None,
    what: str = "JSON file",
) -> Any:
    """Read one JSON document; errors name the file and line. With ``required`` or ``types``
    the document must be an object holding those fields, of those types (as in
    :func:`iter_jsonl`), or it is a :class:`DataError` naming the field."""
    text = read_text(path, what=what)
    if not text.strip():
        raise DataError(f"{what} is empty", path=path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg})", path=path, line=exc.lineno) from None
    if required or types:
        _check_object(value, path, None, required, types)
    return value


def _check_object(
    value: Any,
    path: str | Path,
    line: int | None,
    required: Sequence[str],
    types: Mapping[str, type | tuple[type, ...]] | None,
) -> None:
    """A JSON object with the ``required`` fields, each field of ``types`` of its type."""
    if not isinstance(value, dict):
        raise DataError(f"expected a JSON object, got {type(value).__name__}", path=path, line=line)
    for name in required:
        if name not in value:
            raise DataError("missing field", path=path, line=line, field=name)
    for name, expected in (types or {}).items():
        if name in value and not isinstance(value[name], expected):
            kinds = expected if isinstance(expected, tuple) else (expected,)
            names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise DataError(
                f"expected {names}, got {type(value[name]).__name__}",
                path=path,
                line=line,
                field=name,
            )


def iter_jsonl(
    path: str | Path,
    *,
    required: Sequence[str] = (),
    types: Mapping[str, type | tuple[type, ...]] | None = None,
    what: str = "JSONL file",
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, record)`` for each non-blank line of a JSON Lines file.

    Every record must be a JSON object holding the ``required`` fields, each field named in
    ``types`` of that type (``None`` allowed only where ``type(None)`` is listed). Any failure is
    one :class:`DataError` naming the file, the line and the field.
    """
    text = read_text(path, what=what)
    # Lines end at "\n" only: str.splitlines() would also break inside a record at U+2028,
    # U+0085 and the like, which JSON writes unescaped with ensure_ascii=False.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON ({exc.msg})", path=path, line=number) from None
        _check_object(record, path, number, required, types)
        yield number, record


def read_jsonl(
    path: str | Path,
    *,
    required: Sequence[str] = (),
    types: Mapping[str, type | tuple[type, ...]] | None = None,
    allow_empty: bool = False,
    what: str = "JSONL file",
) -> list[dict[str, Any]]:
    """All records of a JSON Lines file (see :func:`iter_jsonl`); empty is an error by default."""
    records = [r for _, r in iter_jsonl(path, required=required, types=types, what=what)]
    if not records and not allow_empty:
        raise DataError(f"{what} holds no records", path=path)
    return records


def file_sha256(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks (weights can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def text_sha256(text: str) -> str:
    """Hex sha256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_DEFAULT_DISTS = (
    "mixsd-base",
    "kgworld",
    "mixsd-core",
    "mixsd-train",
    "forgetbench",
    "fishertools",
    "mixsd",
)


def package_versions(
    *dists: str, extra: Callable[[], Mapping[str, str]] | None = None
) -> dict[str, str]:
    """``{distribution: version}`` of the named (default: the workspace's) installed packages.

    Missing distributions are left out, so a manifest written by kgworld alone lists only what
    is installed. ``extra`` adds computed entries (e.g. ``python``).
    """
    out: dict[str, str] = {}
    for dist in dists or _DEFAULT_DISTS:
        with contextlib.suppress(PackageNotFoundError):
            out[dist] = version(dist)
    if extra is not None:
        out.update(extra())
    return out
