"""The unit runner records what each unit cost, and a reused unit reports its builder's cost."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mixsd._units import UnitRunner

LINUX = sys.platform.startswith("linux")


def _build(out: Path, megabytes: int) -> None:
    block = bytearray(megabytes * 2**20)
    block[::4096] = b"\1" * len(block[::4096])  # touch every page: resident, not just reserved
    out.write_text("done")


@pytest.mark.skipif(not LINUX, reason="peak memory is read from /proc")
def test_each_unit_records_its_own_peak_memory(tmp_path: Path) -> None:
    units = UnitRunner(tmp_path, echo=lambda _: None)
    big, small = tmp_path / "big.txt", tmp_path / "small.txt"
    units.run("stage", "big", {}, [big], lambda: _build(big, 400))
    units.run("stage", "small", {}, [small], lambda: _build(small, 1))
    peaks = {item.name: item.peak_gb for item in units.log}
    assert peaks["big"] is not None and peaks["small"] is not None
    # the mark is reset before each unit: the small one does not inherit the big one's 400 MB
    assert peaks["big"] - peaks["small"] > 0.3, peaks
    for row in units.measured():  # what the process held before the unit, below its peak
        assert 0 < row["resident_before_gb"] <= row["peak_gb"], row


_LEFT: list[bytearray] = []


def _fragment(out: Path) -> None:
    """Free 300 MB of small heap blocks but keep the last one: glibc cannot shrink its heap past
    it, so without a trim the freed pages stay resident."""
    blocks = [bytearray(100_000) for _ in range(3000)]
    _LEFT.append(blocks[-1])
    del blocks
    out.write_text("done")


@pytest.mark.skipif(not LINUX, reason="resident memory is read from /proc")
def test_memory_an_earlier_unit_freed_is_not_held_by_the_next(tmp_path: Path) -> None:
    units = UnitRunner(tmp_path, echo=lambda _: None)
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    units.run("stage", "first", {}, [first], lambda: _fragment(first))
    units.run("stage", "second", {}, [second], lambda: second.write_text("done"))
    rows = {row["name"]: row for row in units.measured()}
    # the first unit's peak holds its 300 MB; the second starts without them
    assert rows["first"]["peak_gb"] - rows["second"]["resident_before_gb"] > 0.25, rows


def test_a_reused_unit_reports_the_time_and_memory_of_the_run_that_built_it(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.txt"
    first = UnitRunner(tmp_path, echo=lambda _: None)
    first.run("stage", "unit", {"x": 1}, [out], lambda: _build(out, 1))
    built = first.measured()[0]
    assert built["status"] == "ran" and built["seconds"] > 0

    again = UnitRunner(tmp_path, echo=lambda _: None)
    again.run("stage", "unit", {"x": 1}, [out], lambda: pytest.fail("a current unit ran again"))
    reused = again.measured()[0]
    assert reused["status"] == "reused"
    assert (reused["seconds"], reused["peak_gb"]) == (built["seconds"], built["peak_gb"])
    assert "reused" in again.summary() and "peak memory" in again.summary()
