from __future__ import annotations

import pytest

from forgetbench import (
    EvalError,
    code_execution_allowed,
    extract_code,
    load_benchmark,
    run_humaneval,
)


@pytest.fixture(scope="module")
def problem():
    return load_benchmark("humaneval")[0]


def test_refused_without_the_flag(problem, monkeypatch):
    monkeypatch.delenv("FORGETBENCH_ALLOW_CODE_EXEC", raising=False)
    monkeypatch.delenv("HF_ALLOW_CODE_EVAL", raising=False)
    assert not code_execution_allowed()
    with pytest.raises(EvalError, match="--allow-code-exec"):
        run_humaneval([(problem, problem["canonical_solution"])], allow=False)
    monkeypatch.setenv("FORGETBENCH_ALLOW_CODE_EXEC", "1")
    assert code_execution_allowed() and not code_execution_allowed(False)


def test_executes_with_limits(problem):
    body = problem["canonical_solution"]
    # A chat reply that rewrites the whole function in a code block (the scored program is the
    # prompt plus the block: the redefinition wins).
    chat = f"Sure:\n```python\n{problem['prompt']}{body}```"
    items = [
        (problem, body),
        (problem, extract_code(chat)),
        (problem, "    return not True\n"),
        (problem, "    while True:\n        pass\n"),
        (problem, "    x = bytearray(8 * 1024**3)\n    return True\n"),  # over the memory limit
    ]
    results = run_humaneval(items, allow=True, timeout=2.0, memory_mb=1024)
    assert [r["passed"] for r in results] == [True, True, False, False, False]
    assert results[3]["result"] == "timed out"
