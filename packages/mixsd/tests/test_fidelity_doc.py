"""docs/fidelity.md has no silent row: every row states its status and names tests that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "fidelity.md"
STATUSES = ("same", "differs", "missing")
# `package/tests/file.py::test_name`, optionally followed by more `::other` names on the same file.
TEST_REF = re.compile(r"`([\w.-]+/tests/[\w/]+\.py)((?:::\w+)*)`")
SHORT_REF = re.compile(r"`::(\w+)`")


def _rows() -> list[tuple[int, list[str]]]:
    rows = []
    for number, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), 1):
        if not line.startswith("|") or set(line) <= set("|- "):
            continue
        # `\|` inside a cell (e.g. "<|im_end|>" written in code) is not a separator.
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if cells[0] != "element":
            rows.append((number, cells))
    return rows


def test_every_row_has_a_status() -> None:
    rows = _rows()
    assert len(rows) >= 40
    for number, cells in rows:
        assert len(cells) == 6, f"docs/fidelity.md:{number}: expected 6 cells, got {len(cells)}"
        assert cells[4].startswith(STATUSES), f"docs/fidelity.md:{number}: status {cells[4]!r}"
        assert "@@" not in "".join(cells)


def _defined(path: Path, name: str) -> bool:
    return (
        re.search(rf"^\s*(?:async )?def {name}\b|^class {name}\b", path.read_text(), re.M)
        is not None
    )


@pytest.mark.parametrize(
    "number,cells", _rows(), ids=lambda v: str(v) if isinstance(v, int) else ""
)
def test_named_tests_exist(number: int, cells: list[str]) -> None:
    text = cells[5]
    if text != "—":  # a row that names a test names one the regex can resolve
        assert TEST_REF.search(text), f"docs/fidelity.md:{number}: no `pkg/tests/file.py::test`"
    last: Path | None = None
    for match in re.finditer(rf"{TEST_REF.pattern}|{SHORT_REF.pattern}", text):
        if match.group(1):
            last = ROOT / "packages" / match.group(1)
            assert last.is_file(), f"docs/fidelity.md:{number}: no file {match.group(1)}"
            names = [n for n in match.group(2).split("::") if n]
        else:  # `::name` continues the file named before it in the same cell
            assert last is not None, (
                f"docs/fidelity.md:{number}: `::{match.group(3)}` without a file"
            )
            names = [match.group(3)]
        for name in names:
            assert _defined(last, name), f"docs/fidelity.md:{number}: no test {name} in {last}"
