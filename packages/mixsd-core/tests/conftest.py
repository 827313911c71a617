"""mixsd-core's own fixtures: its console script run in-process, and the rendered prompts of the
rollout tests. The tiny model, records and JSONL writer come from the shared plugin,
mixsd_core.pytest_plugin."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run the ``mixsd-core`` console script in-process: ``cli(*args) -> (exit code, out, err)``.

    Through ``main`` (``mixsd_base.run_cli``), so user errors are printed as the console script
    prints them, not caught by a test runner.
    """
    from mixsd_core.cli import main

    monkeypatch.delenv("MIXSD_DEBUG", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()  # drop what came before
        monkeypatch.setattr("sys.argv", ["mixsd-core", *args])
        with pytest.raises(SystemExit) as done:
            main()
        captured = capsys.readouterr()
        return int(done.value.code or 0), captured.out, captured.err

    return run


@pytest.fixture(scope="module")
def prompts(tiny_lm: Any, make_records: Any) -> tuple[list[str], list[str], list[str]]:
    """``(ids, naive prompts, expert prompts)`` of ``make_records()``, rendered for the tiny model."""
    from mixsd_core import render_prompts

    _, tok = tiny_lm
    records = make_records()
    rendered = [render_prompts(tok, r) for r in records]
    return [r["id"] for r in records], [n for n, _ in rendered], [e for _, e in rendered]
