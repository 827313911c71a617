from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mixsd_base import (
    DataError,
    Registry,
    UnknownNameError,
    atomic_write,
    check_output,
    file_sha256,
    read_json,
    read_jsonl,
    suggest,
    text_sha256,
    write_json,
    write_jsonl,
)


def test_jsonl_round_trip_and_atomic(tmp_path):
    out = tmp_path / "sub" / "r.jsonl"
    assert write_jsonl(out, [{"id": "a", "x": "é"}, {"id": "b", "x": None}]) == 2
    assert out.read_text(encoding="utf-8") == '{"id": "a", "x": "é"}\n{"id": "b", "x": null}\n'
    assert read_jsonl(out, required=["id"]) == [{"id": "a", "x": "é"}, {"id": "b", "x": None}]
    assert [p.name for p in out.parent.iterdir()] == ["r.jsonl"]  # no temporary left


def test_jsonl_lines_end_only_at_newline(tmp_path):
    # A model's text may hold U+2028 or U+0085, which write_jsonl keeps unescaped.
    out = tmp_path / "r.jsonl"
    records = [{"id": "a", "x": "one\u2028two\x85three"}, {"id": "b", "x": "ok"}]
    write_jsonl(out, records)
    assert read_jsonl(out) == records
    out.write_bytes(b'{"id": "a"}\r\n{"id": "b"}\r\n')
    assert read_jsonl(out) == [{"id": "a"}, {"id": "b"}]


def test_a_write_removes_the_temporaries_of_dead_writers(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    out = tmp_path / "r.json"
    left = tmp_path / f".r.json.{int(dead.stdout)}.tmp"  # a writer killed before its rename
    live = tmp_path / f".r.json.{os.getppid()}.tmp"  # a writer still at work
    other = tmp_path / f".other.json.{int(dead.stdout)}.tmp"
    for path in (left, live, other):
        path.write_text("{")
    write_json(out, {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, live.name, other.name])


def test_atomic_write_leaves_old_file_on_error(tmp_path):
    out = tmp_path / "o.json"
    write_json(out, {"a": 1})
    with pytest.raises(RuntimeError), atomic_write(out) as f:
        f.write("half")
        raise RuntimeError("interrupted")
    assert json.loads(out.read_text(encoding="utf-8")) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json"]


def test_write_json_default_writes_what_json_cannot_hold(tmp_path):
    out = tmp_path / "m.json"
    with pytest.raises(TypeError):
        write_json(out, {"path": tmp_path})
    write_json(out, {"path": Path("a/b"), "é": 1}, default=str)
    assert out.read_bytes() == '{\n  "path": "a/b",\n  "é": 1\n}\n'.encode()


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        (b'{"id": "a"}\n{"id": \n', {}, r"r.jsonl:2: invalid JSON"),
        (b'{"id": "a"}\n[1]\n', {}, r"r.jsonl:2: expected a JSON object, got list"),
        (b'{"id": "a"}\n{"x": 1}\n', {"required": ["id"]}, r"r.jsonl:2: field 'id': missing field"),
        (b'{"id": 3}\n', {"types": {"id": str}}, r"r.jsonl:1: field 'id': expected str, got int"),
        (b'{"id": "a"}\n\xff\n', {}, r"r.jsonl:2: not UTF-8"),
        (b"\n", {}, r"r.jsonl: JSONL file holds no records"),
    ],
)
def test_jsonl_errors_name_file_line_field(tmp_path, content, kwargs, message):
    path = tmp_path / "r.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_jsonl(path, **kwargs)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"r.json: state file is empty"),
        (b'{\n  "log": [1,\n', r"r.json:3: invalid JSON"),
        (b"[1]\n", r"r.json: expected a JSON object, got list"),
        (b'{"step": 1}', r"r.json: field 'log': missing field"),
        (b'{"log": 3}', r"r.json: field 'log': expected list, got int"),
        (b'{"log": [],\n "\xff": 1}', r"r.json:2: not UTF-8"),
    ],
)
def test_json_errors_name_file_line_field(tmp_path, content, message):
    path = tmp_path / "r.json"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_json(path, required=["log"], types={"log": list}, what="state file")
    path.write_bytes(b'{"log": [], "step": 1}')
    assert read_json(path, required=["log"], types={"log": list}) == {"log": [], "step": 1}


def test_check_output_names_what_blocks_the_write(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert (
        check_output(tmp_path / "new" / "deeper" / "out.json") == tmp_path / "new/deeper/out.json"
    )
    assert check_output(tmp_path / "run", folder=True) == tmp_path / "run"
    for path, folder in ((blocker / "out.json", False), (blocker / "sub" / "run", True)):
        with pytest.raises(DataError, match=f"^{blocker}: a file, not a folder: cannot write"):
            check_output(path, folder=folder)
    with pytest.raises(DataError, match=f"^{blocker}: output is a file, expected a folder"):
        check_output(blocker, folder=True)
    with pytest.raises(DataError, match=f"^{tmp_path}: output is a folder, expected a file"):
        check_output(tmp_path)
    # A folder the user may not write (as root every folder is writable: os.access says so).
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode))
    with pytest.raises(DataError, match=f"^{locked}: folder not writable: cannot write output"):
        check_output(locked / "x" / "out.jsonl")
    assert not (locked / "x").exists()


def test_gzipped_jsonl_reads_like_plain(tmp_path):
    import gzip

    path = tmp_path / "r.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"id": "a"}\n\n{"id": "b"}\n'))
    assert read_jsonl(path) == [{"id": "a"}, {"id": "b"}]
    path.write_bytes(b"not gzip")
    with pytest.raises(DataError, match=r"r.jsonl.gz: not a readable gzip"):
        read_jsonl(path)


def test_hashes(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("abc", encoding="utf-8")
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert file_sha256(path) == text_sha256("abc") == expected


def test_registry_lookup_and_did_you_mean():
    reg: Registry[int] = Registry("verifier", {"boxed": 1})
    reg.register("integer", 2)

    @reg.register("exact")
    def _exact() -> int:
        return 3

    assert reg["boxed"] == 1 and "integer" in reg and list(reg) == ["boxed", "integer", "exact"]
    with pytest.raises(UnknownNameError) as info:
        reg["boxd"]
    assert (
        str(info.value)
        == "unknown verifier 'boxd' (did you mean 'boxed'?); choose one of: boxed, integer, exact"
    )
    with pytest.raises(ValueError, match="twice"):
        reg.register("boxed", 9)
    with pytest.raises(TypeError):
        reg["new"] = 4  # type: ignore[index]
    with reg.temporary("stand-in", 5):
        assert reg["stand-in"] == 5
    assert "stand-in" not in reg
    with pytest.raises(ValueError, match="twice"), reg.temporary("boxed", 9):
        pass
    assert reg["boxed"] == 1


def test_suggest_falls_back_to_a_choice_the_name_starts():
    choices = ["default", "qwen2.5-coder-0.5b-instruct"]
    assert suggest("defualt", choices) == " (did you mean 'default'?)"
    assert suggest("qwen", choices) == " (did you mean 'qwen2.5-coder-0.5b-instruct'?)"
    assert suggest("qw", choices) == ""  # too short to say
    assert suggest("llama", choices) == ""
