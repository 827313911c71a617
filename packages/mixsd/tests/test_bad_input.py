"""Bad input, for every command ``mixsd`` lists: exit status not 0, exactly one line ``error: ...``
naming the file (and its line and field where there is one), no traceback, and not one file
created or changed (issue #20).

``TABLE`` has one row per command and one cell per case of ``CASES``. A cell builds the command
line for its case, or says why the case does not apply to that command (``NA``): no silent gaps,
and a test checks that the rows are exactly the commands the CLI lists. Commands run in this
process (``run_cli`` around the Typer app, as the console script runs it): one subprocess per
case would import torch 200 times.

A read-only output folder: as root (CI containers) ``chmod 555`` does not stop a write, so there
the case makes ``os.access`` report the folder read-only, which is what the commands' output
check (``mixsd_base.check_output``) asks before any work.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import shutil
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from mixsd.cli import app
from mixsd_base import run_cli
from mixsd_core.pytest_plugin import make_records

CASES = (
    "missing file",
    "empty file",
    "non-UTF-8 bytes",
    "truncated JSON",
    "missing field",
    "wrong type",
    "unknown config key",
    "bad enum value",
    "output is a file",
    "read-only output",
)
DATA_CASES = CASES[:6]


@dataclass(frozen=True)
class NA:
    """A case that does not apply to a command, and why."""

    reason: str


@dataclass
class Call:
    """A command line and the fragments its one error line must hold (file, line, field)."""

    argv: list[str]
    expect: list[str] = field(default_factory=list)
    read_only: Path | None = None  # the folder the case makes read-only


@dataclass
class Inputs:
    """Valid inputs of every command under ``tmp``; the ``*_for`` methods spoil one for a case."""

    tmp: Path
    model: Path
    world: Path

    def path(self, name: str) -> Path:
        return self.tmp / name

    # -- data files: JSON Lines, JSON documents, YAML configs ----------------------------------

    def jsonl_for(self, case: str, name: str, rows: list[dict[str, Any]], key: str) -> Call:
        """``name`` holding ``rows``, spoilt on its second line for a data case (``key``: the
        field that goes missing or gets a wrong type); the Call's argv is empty."""
        path = self.path(name)
        lines = [json.dumps(r, ensure_ascii=False) for r in rows]
        where = [f"{path}:2"]
        if case == "missing file":
            return Call([], [str(path)])
        if case == "empty file":
            path.write_bytes(b"")
            return Call([], [str(path)])
        if case == "non-UTF-8 bytes":
            lines[1] = lines[1].replace('"', '"\udcff', 1)  # a lone 0xff byte inside a string
        elif case == "truncated JSON":
            lines[1] = lines[1][: len(lines[1]) // 2]
        elif case == "missing field":
            lines[1] = json.dumps({k: v for k, v in rows[1].items() if k != key})
            where.append(f"field '{key}'")
        elif case == "wrong type":
            lines[1] = json.dumps({**rows[1], key: [3]})
            where.append(f"field '{key}'")
        else:
            where = []
        path.write_bytes("".join(f"{line}\n" for line in lines).encode("utf-8", "surrogateescape"))
        return Call([], where)

    def json_for(
        self, case: str, path: Path, doc: Any, keys: tuple[str | int, ...], name: str
    ) -> Call:
        """``doc`` as a JSON document (one key a line) at ``path``, spoilt for a data case:
        the field at ``keys`` (a path into ``doc``) left out or given a wrong type; ``name``
        is how the error names that field."""
        fragments = [str(path)] if case in DATA_CASES else []
        if case == "missing file":
            return Call([], fragments)
        doc = json.loads(json.dumps(doc))  # a copy to spoil
        *parents, last = keys
        node = doc
        for key in parents:
            node = node[key]
        if case == "missing field":
            del node[last]
            fragments.append(f"field '{name}'")
        elif case == "wrong type":
            node[last] = 3
            fragments.append(f"field '{name}'")
        text = json.dumps(doc, indent=2)
        if case == "empty file":
            text = ""
        elif case == "non-UTF-8 bytes":
            at = text.index('"')
            text = f"{text[: at + 1]}\udcff{text[at + 1 :]}"
            fragments = [f"{path}:{text[:at].count(chr(10)) + 1}"]
        elif case == "truncated JSON":
            text = text[: len(text) // 2]
            fragments = [f"{path}:"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        return Call([], fragments)

    def config_for(
        self,
        case: str,
        values: dict[str, Any],
        *,
        enum: tuple[str, Any] | None = None,
        data: dict[str, str] | None = None,
    ) -> Call:
        """``--config FILE`` with ``values`` for the config cases: an unknown key, or ``enum``
        (key, bad value) on the file's last line. With ``data`` (case -> key) the file is the
        command's input, spoilt for the data cases too (``missing field``: that key left out,
        ``wrong type``: that key set to a list)."""
        path = self.path("config.yaml")
        text = yaml.safe_dump(values, sort_keys=False)
        line = text.count("\n") + 1  # the line a key appended at the end lands on
        expect: list[str] = []
        if case == "unknown config key":
            text += "batchsize: 4\n"
            expect = [f"{path}:{line}", "field 'batchsize'"]
        elif case == "bad enum value" and enum is not None:
            key, value = enum
            text += yaml.safe_dump({key: value})
            if isinstance(value, dict):  # a key of a section: one line further down
                (inner,) = value
                key, line = f"{key}.{inner}", line + 1
            expect = [f"{path}:{line}", f"field '{key}'"]
        elif data is not None and case in DATA_CASES:
            expect = [str(path)]
            if case == "missing file":
                return Call(["--config", str(path)], expect)
            if case == "empty file":
                text = ""
            elif case == "non-UTF-8 bytes":
                text = text.replace(":", ":\udcff", 1)
                expect = [f"{path}:1"]
            elif case == "truncated JSON":  # YAML's version: an unclosed flow list
                text += "extra: [1, 2\n"
                expect = [f"{path}:"]
            elif case == "missing field":
                text = yaml.safe_dump({k: v for k, v in values.items() if k != data[case]})
                expect.append(f"field '{data[case]}'")
            elif case == "wrong type":
                text = yaml.safe_dump({**values, data[case]: [1, 2]}, sort_keys=False)
                expect.append(f"field '{data[case]}'")
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        return Call(["--config", str(path)], expect)

    # -- outputs -------------------------------------------------------------------------------

    def output_for(self, case: str, name: str, *, folder: bool = False) -> Call:
        """The output path for ``case``: under a file (``output is a file``: for a folder
        output, the folder itself is that file), in a read-only folder, or a fresh one."""
        if case == "output is a file":
            blocker = self.path("a-file")
            blocker.write_text("not a folder\n")
            return Call([str(blocker if folder else blocker / name)], [str(blocker)])
        if case == "read-only output":
            locked = self.path("locked")
            locked.mkdir()
            return Call([str(locked / name)], [str(locked)], read_only=locked)
        return Call([str(self.path("out") / name)])


# ------------------------------------------------------------------------------ the commands
#
# Each row: (case, inputs) -> Call | NA. The good inputs come first; the case spoils one.

NO_INPUT = "reads no file"
NO_OUTPUT = "writes no file"
NO_CONFIG = "takes no config file"
NO_CHOICE = "has no option with a fixed set of values"


def _merge(*calls: Call, argv: list[str]) -> Call:
    """One Call: ``argv`` and every call's expectations (only one call is spoilt per case)."""
    expect = [e for c in calls for e in c.expect]
    read_only = next((c.read_only for c in calls if c.read_only is not None), None)
    return Call(argv, expect, read_only)


def _records(n: int = 3) -> list[dict[str, Any]]:
    return make_records(n)


def world_gen(case: str, t: Inputs) -> Call | NA:
    if case == "empty file":
        return NA("an empty config file is a config of defaults (YAML's empty document)")
    if case == "missing field":
        return NA("every world setting has a default")
    config = t.config_for(
        case,
        {"preset": "small", "seed": 3},
        enum=("preset", "huge"),
        data={"wrong type": "seed"},
    )
    out = t.output_for(case, "world", folder=True)
    return _merge(config, out, argv=["world", "gen", "-q", *config.argv, "--out", *out.argv])


def world_config(case: str, t: Inputs) -> Call | NA:
    if case == "bad enum value":
        return Call(["world", "config", "--preset", "huge"], ["field 'preset'"])
    return NA(NO_CONFIG if case == "unknown config key" else f"{NO_INPUT}, {NO_OUTPUT}")


def _world_reader(command: str) -> Callable[[str, Inputs], Call | NA]:
    def row(case: str, t: Inputs) -> Call | NA:
        if case not in DATA_CASES:
            return NA(NO_CONFIG if case in CASES[6:8] else NO_OUTPUT)
        world = t.path("world")
        shutil.copytree(t.world, world)
        manifest = world / "manifest.json"
        doc = json.loads(manifest.read_text())
        manifest.unlink()
        spoilt = t.json_for(case, manifest, doc, ("files",), "files")
        return Call(["world", command, str(world)], spoilt.expect)

    return row


MQUAKE_CASE = {
    "case_id": 1,
    "requested_rewrite": [
        {
            "prompt": "{} is a citizen of",
            "subject": "Danielle Darrieux",
            "target_new": {"str": "Japan"},
            "target_true": {"str": "France"},
        }
    ],
    "questions": ["Which city is the capital of Danielle Darrieux's country?"],
    "answer": "Paris",
    "new_answer": "Tokyo",
}


def world_import_mquake(case: str, t: Inputs) -> Call | NA:
    if case in CASES[6:8]:
        return NA(NO_CONFIG)
    source = t.path("mquake.json")
    cases = [MQUAKE_CASE, {**MQUAKE_CASE, "case_id": 2}]
    spoilt = t.json_for(case, source, cases, (1, "questions"), "questions")
    out = t.output_for(case, "mquake", folder=True)
    return _merge(spoilt, out, argv=["world", "import-mquake", str(source), "--out", *out.argv])


def world_import_qa(case: str, t: Inputs) -> Call | NA:
    if case in CASES[6:8]:
        return NA(NO_CONFIG)
    rows = [{"question": f"Which way is {w}?", "answer": w} for w in ("up", "down", "left")]
    data = t.jsonl_for(case, "qa.jsonl", rows, "answer")
    out = t.output_for(case, "qa", folder=True)
    argv = ["world", "import-qa", str(t.path("qa.jsonl")), "--out", *out.argv]
    return _merge(data, out, argv=argv)


def rollout(case: str, t: Inputs) -> Call | NA:
    data = t.jsonl_for(case, "data.jsonl", _records(), "prompt")
    config = t.config_for(case, {"batch_size": 2, "max_new_tokens": 4}, enum=("backend", "hf2"))
    out = t.output_for(case, "rollout.jsonl")
    argv = ["rollout", "--quiet", "--model", str(t.model), "--data", str(t.path("data.jsonl"))]
    return _merge(data, config, out, argv=[*argv, *config.argv, "--out", *out.argv])


def nll(case: str, t: Inputs) -> Call | NA:
    if case == "bad enum value":
        return NA(NO_CHOICE)
    data = t.jsonl_for(case, "data.jsonl", _records(), "target")
    config = t.config_for(case, {"batch_size": 2})
    out = t.output_for(case, "nll.json")
    argv = ["nll", "--quiet", "--model", str(t.model), "--data", str(t.path("data.jsonl"))]
    return _merge(data, config, out, argv=[*argv, *config.argv, "--out", *out.argv])


def models_list(case: str, t: Inputs) -> Call | NA:
    return NA(f"takes no option; {NO_OUTPUT}")


def models_convert(case: str, t: Inputs) -> Call | NA:
    if case == "bad enum value":  # the name of a registry model
        return Call(["models", "convert", "defualt"], ["defualt"])
    return NA(
        "takes only a registry name; writes only into the model cache ($MIXSD_HOME), "
        "not a path given on its command line"
    )


def train(case: str, t: Inputs) -> Call | NA:
    data = t.jsonl_for(case, "data.jsonl", _records(), "target")
    config = t.config_for(case, {"max_steps": 1}, enum=("prompt_style", "plain"))
    out = t.output_for(case, "train", folder=True)
    argv = ["train", "--method", "sft", "--model", str(t.model)]
    argv += ["--data", str(t.path("data.jsonl"))]
    return _merge(data, config, out, argv=[*argv, *config.argv, "--out", *out.argv])


def select(case: str, t: Inputs) -> Call | NA:
    if case == "output is a file":
        return NA("writes RUN_DIR/selection.json: a run folder that is a file is 'missing file'")
    run = t.path("run")
    if case == "missing file":
        return Call(["select", str(run)], [str(run)])
    (run / "checkpoint-1").mkdir(parents=True)
    state = {"log_history": [{"step": 1, "val_accuracy": 0.5}], "global_step": 1}
    state_file = run / "trainer_state.json"
    spoilt = t.json_for(case, state_file, state, ("log_history",), "log_history")
    config = t.config_for(case, {"rule": "last"}, enum=("rule", "best"))
    call = _merge(spoilt, config, argv=["select", str(run), *config.argv])
    if case == "read-only output":
        call.read_only, call.expect = run, [str(run)]
    return call


def edit(case: str, t: Inputs) -> Call | NA:
    rows = [json.loads(line) for line in (t.world / "edit/train.jsonl").read_text().splitlines()]
    data = t.jsonl_for(case, "edits.jsonl", rows[:3], "prompt")
    config = t.config_for(case, {"batch_size": 2}, enum=("prompt_format", "essay"))
    out = t.output_for(case, "edited", folder=True)
    argv = ["edit", "--model", str(t.model), "--edits", str(t.path("edits.jsonl"))]
    return _merge(data, config, out, argv=[*argv, *config.argv, "--out", *out.argv])


def evaluate(case: str, t: Inputs) -> Call | NA:
    rows = [{"prompt": f"Say {w}."} for w in ("hi", "yes", "no")]
    data = t.jsonl_for(case, "prompts.jsonl", rows, "prompt")
    config = t.config_for(case, {"batch_size": 2}, enum=("protocol", "lenient"))
    out = t.output_for(case, "eval.json")
    argv = [
        "eval",
        "--model", str(t.model),
        "--base-model", str(t.model),
        "--suites", "refloss",
        "--ref-prompts", "2",
        "--ref-max-new-tokens", "4",
        "--ref-prompts-file", str(t.path("prompts.jsonl")),
        "--cache-dir", str(t.path("cache")),
    ]  # fmt: skip
    if case == "missing file":  # checked when the config loads: the message names the field
        data.expect = [str(t.path("prompts.jsonl")), "field 'ref_prompts_file'"]
    return _merge(data, config, out, argv=[*argv, *config.argv, "--out", *out.argv])


def data_list(case: str, t: Inputs) -> Call | NA:
    if case == "unknown config key":
        config = t.config_for(case, {"data_dir": str(t.path("bench"))})
        return Call(["data", "list", *config.argv], config.expect)
    return NA(f"{NO_CHOICE}; reads a data folder only if present; {NO_OUTPUT}")


def data_fetch(case: str, t: Inputs) -> Call | NA:
    if case in DATA_CASES:
        return NA("its input is the hub (offline in tests)")
    if case == "bad enum value":  # the benchmark's name
        return Call(["data", "fetch", "gsm8kk"], ["gsm8kk"])
    config = t.config_for(case, {"force": False})
    out = t.output_for(case, "bench", folder=True)
    argv = ["data", "fetch", "gsm8k", *config.argv, "--data-dir", *out.argv]
    return _merge(config, out, argv=argv)


def fisher_compute(case: str, t: Inputs) -> Call | NA:
    rows = [{"prompt": f"Say {w}.", "response": f"{w.title()}."} for w in ("hi", "yes", "no")]
    data = t.jsonl_for(case, "fisher.jsonl", rows, "response")
    config = t.config_for(case, {"max_length": 64}, enum=("reduction", "median"))
    out = t.output_for(case, "fisher.safetensors")
    argv = ["fisher", "compute", "--quiet", "--model", str(t.model)]
    argv += ["--data", str(t.path("fisher.jsonl"))]
    return _merge(data, config, out, argv=[*argv, *config.argv, "--out", *out.argv])


def fisher_compare(case: str, t: Inputs) -> Call | NA:
    rows = [{"prompt": f"Say {w}.", "response": f"{w.title()}."} for w in ("hi", "yes", "no")]
    data = t.jsonl_for(case, "loss.jsonl", rows, "response")
    values = {"loss_data": str(t.path("loss.jsonl")), "plot": False}
    config = t.config_for(case, values, enum=("evaluate_checkpoints", "some"))
    out = t.output_for(case, "compare.json")
    fisher = _tiny_fisher(t)
    argv = ["fisher", "compare", "--quiet", "--fisher", str(fisher), "--base", str(t.model)]
    argv += ["--checkpoints", str(t.model)]
    return _merge(data, config, out, argv=[*argv, *config.argv, "--out", *out.argv])


def _tiny_fisher(t: Inputs) -> Path:
    """A Fisher file of the tiny model (every weight 1): compare's other input, valid."""
    import torch
    from safetensors.torch import load_file

    from fishertools import FisherResult, save_fisher

    weights = load_file(str(t.model / "model.safetensors"))
    fisher = {name: torch.ones_like(w, dtype=torch.float32) for name, w in weights.items()}
    manifest = {"format": "fishertools-fisher-v1", "config": {"reduction": "sum"}}
    path = t.path("fisher/base.safetensors")
    return save_fisher(FisherResult(fisher, manifest), path)


def frontier(case: str, t: Inputs) -> Call | NA:
    data = t.jsonl_for(case, "data.jsonl", _records(), "prompt")
    values = {"alphas": [0.5], "attempts": 1, "nll": False, "rollout": {"max_new_tokens": 4}}
    config = t.config_for(case, values, enum=("rollout", {"backend": "hf2"}))
    out = t.output_for(case, "frontier", folder=True)
    argv = ["frontier", "--quiet", "--model", str(t.model), "--data", str(t.path("data.jsonl"))]
    return _merge(data, config, out, argv=[*argv, *config.argv, "--out", *out.argv])


def run(case: str, t: Inputs) -> Call | NA:
    values = {
        "out": str(t.path("out/run")),
        "model": str(t.model),
        "methods": ["base", "sft"],
        "seed": 0,
    }
    if case == "output is a file":
        blocker = t.path("a-file")
        blocker.write_text("not a folder\n")
        values["out"] = str(blocker)
    elif case == "read-only output":
        (t.path("locked")).mkdir()
        values["out"] = str(t.path("locked/run"))
    config = t.config_for(
        case,
        values,
        enum=("select", "best"),
        data={"missing field": "methods", "wrong type": "seed"},
    )
    call = Call(["run", "--quiet", *config.argv], config.expect)
    if case == "output is a file":
        call.expect = [str(t.path("a-file"))]
    elif case == "read-only output":
        call.expect, call.read_only = [str(t.path("locked"))], t.path("locked")
    return call


def report(case: str, t: Inputs) -> Call | NA:
    if case == "bad enum value":
        return NA(NO_CHOICE)
    if case == "output is a file":
        return NA("writes into RUN_DIR: a run folder that is a file is 'missing file'")
    folder = t.path("run")
    folder.mkdir()
    index = {"evals": {}, "runs": {}, "methods": [], "nll": {}, "model": "m", "data": "d"}
    spoilt = t.json_for(case, folder / "run.json", index, ("evals",), "evals")
    config = t.config_for(case, {"plots": False})
    call = _merge(spoilt, config, argv=["report", str(folder), *config.argv])
    if case == "read-only output":
        call.read_only, call.expect = folder, [str(folder)]
    return call


def version(case: str, t: Inputs) -> Call | NA:
    return NA(f"takes no option; {NO_OUTPUT}")


TABLE: dict[str, Callable[[str, Inputs], Call | NA]] = {
    "world gen": world_gen,
    "world config": world_config,
    "world stats": _world_reader("stats"),
    "world check": _world_reader("check"),
    "world import-mquake": world_import_mquake,
    "world import-qa": world_import_qa,
    "rollout": rollout,
    "nll": nll,
    "models list": models_list,
    "models convert": models_convert,
    "train": train,
    "select": select,
    "edit": edit,
    "eval": evaluate,
    "data list": data_list,
    "data fetch": data_fetch,
    "fisher compute": fisher_compute,
    "fisher compare": fisher_compare,
    "frontier": frontier,
    "run": run,
    "report": report,
    "version": version,
}


def listed_commands() -> set[str]:
    """Every command the ``mixsd`` CLI lists (groups expanded; hidden aliases left out)."""

    def walk(command: Any, prefix: str) -> Iterator[str]:
        if hasattr(command, "commands"):  # a group (Typer ships its own click)
            for name, sub in command.commands.items():
                if not sub.hidden:
                    yield from walk(sub, f"{prefix} {name}".strip())
        else:
            yield prefix

    return set(walk(typer.main.get_command(app), ""))


def test_the_table_has_a_row_for_every_command() -> None:
    assert set(TABLE) == listed_commands()


# -------------------------------------------------------------------------------- the harness


def _snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its kind and content hash: what a command changed."""
    seen = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_dir():
            seen[rel] = "folder"
        else:
            seen[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    crash: str | None  # the traceback of an exception that escaped run_cli


def invoke(argv: list[str]) -> Outcome:
    """Run ``mixsd ARGV`` as the console script does, in this process."""
    out, err = io.StringIO(), io.StringIO()
    crash = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            run_cli(functools.partial(app, args=argv, prog_name="mixsd"))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except Exception:
            crash, code = traceback.format_exc(), 1
    return Outcome(code, out.getvalue(), err.getvalue(), crash)


@contextlib.contextmanager
def read_only(folder: Path | None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``folder`` read-only: by its mode, or, as root (who may write anywhere), as
    ``os.access`` reports it."""
    if folder is None:
        yield
        return
    if os.geteuid() == 0:
        real_access = os.access

        def access(path: Any, mode: int, **kwargs: Any) -> bool:
            if mode & os.W_OK and Path(path).absolute().is_relative_to(folder):
                return False
            return real_access(path, mode, **kwargs)

        monkeypatch.setattr(os, "access", access)
        yield
        return
    folder.chmod(0o555)
    try:
        yield
    finally:
        folder.chmod(0o755)


CELLS = [(command, case) for command in TABLE for case in CASES]


@pytest.mark.parametrize(("command", "case"), CELLS, ids=[f"{c}|{k}" for c, k in CELLS])
def test_bad_input(
    command: str,
    case: str,
    tmp_path: Path,
    tiny_model_dir: Path,
    small_world_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MIXSD_DEBUG", raising=False)
    monkeypatch.setenv("MIXSD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FORGETBENCH_DATA", str(tmp_path / "bench-data"))
    scratch = tmp_path / "t"
    scratch.mkdir()
    cell = TABLE[command](case, Inputs(scratch, tiny_model_dir, small_world_dir))
    if isinstance(cell, NA):
        assert cell.reason
        pytest.skip(f"not applicable: {cell.reason}")
    before = _snapshot(tmp_path)
    with read_only(cell.read_only, monkeypatch):
        outcome = invoke(cell.argv)
    after = _snapshot(tmp_path)
    assert outcome.crash is None, outcome.crash
    assert outcome.code != 0, outcome.out + outcome.err
    lines = outcome.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), outcome.err
    assert "Traceback" not in outcome.err + outcome.out
    for fragment in cell.expect:
        assert fragment in lines[0], (fragment, lines[0])
    assert after == before, {k: after.get(k) for k in set(after) ^ set(before)}
