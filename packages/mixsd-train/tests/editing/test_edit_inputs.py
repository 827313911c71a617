"""Edit requests, layer rules, config checks and the ``edit`` command (one-line errors)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from mixsd_base import UserError
from mixsd_train import TrainError
from mixsd_train.editing import MEMITConfig, default_layers, parse_layers, read_edit_requests
from mixsd_train.editing.cli import edit_command

app = typer.Typer()
app.command("edit")(edit_command)
app.command("unused")(lambda: None)  # two commands: Typer keeps "edit" as a subcommand
runner = CliRunner()


def test_read_edit_requests(write_edits: Callable[..., Path]) -> None:
    requests = read_edit_requests(write_edits(3))
    assert [r.subject for r in requests] == ["Zorvath Kellen", "Mira Solend", "Lio Tarn"]
    first = requests[0]
    assert first.target_new == "Ormavel Dynamics" and first.target_true == "Stukli Institute"
    text, end = first.text("Some prefix. {}")
    assert text == "Some prefix. Zorvath Kellen is employed by"
    assert text[:end].endswith("Zorvath Kellen")
    assert first.question == "Question about Zorvath Kellen?"


def test_chat_request_asks_the_question_then_starts_the_reply(
    write_edits: Callable[..., Path], make_edit: Callable[..., dict[str, Any]], edit_model_dir: Path
) -> None:
    from mixsd_core import load_model, render_naive_prompt

    record = make_edit(0, "{} was born in", "Lio Tarn", "Port Drume", "Quellport")
    record["prompt"] = "Where was Lio Tarn born? Put it within \\boxed{}."  # a literal {} too
    (request,) = read_edit_requests(write_edits(records=[record]))
    _, tokenizer = load_model(str(edit_model_dir), device="cpu")
    chat = request.in_chat(tokenizer)
    question_turn = render_naive_prompt(tokenizer, record)
    assert chat.prompt == question_turn + "{} was born in"
    for template in ("{}", "Some prefix. {}"):
        text, end = chat.text(template)
        assert text == template.replace("{}", question_turn + "Lio Tarn was born in")
        assert text[:end].endswith("<|im_start|>assistant\nLio Tarn")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["meta"].pop("rewrite"), "missing field 'meta.rewrite'"),
        (lambda r: r.update(meta=None), "missing field 'meta.rewrite'"),
        (lambda r: r["meta"]["rewrite"].pop("subject"), "'meta.rewrite.subject' must be"),
        (lambda r: r["meta"]["rewrite"].update(target_new=""), "'meta.rewrite.target_new'"),
        (lambda r: r["meta"]["rewrite"].update(prompt="{} and {}"), "exactly once"),
        (lambda r: r["meta"]["rewrite"].update(prompt="no slot"), "exactly once"),
        (lambda r: r["meta"]["rewrite"].update(target_true=3), "'meta.rewrite.target_true'"),
    ],
)
def test_bad_request_names_file_line_and_field(
    write_edits: Callable[..., Path],
    make_edit: Callable[..., dict[str, Any]],
    change: Callable[[dict[str, Any]], object],
    message: str,
) -> None:
    records = [make_edit(0, "{} resides in", "A B", "C", None) for _ in range(2)]
    records[1]["id"] = "edit-000001"
    change(records[1])
    path = write_edits(records=records)
    with pytest.raises(UserError, match=message) as error:
        read_edit_requests(path)
    assert str(error.value).startswith(f"{path}:2: ")


def test_blank_lines_keep_line_numbers(
    make_edit: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    good = json.dumps(make_edit(0, "{} resides in", "A B", "C", None))
    bad = make_edit(1, "{} resides in", "A B", "C", None)
    del bad["meta"]["rewrite"]
    path = tmp_path / "gaps.jsonl"
    path.write_text(f"{good}\n\n{json.dumps(bad)}\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"{path}:3: missing field 'meta.rewrite'"):
        read_edit_requests(path)


def test_parse_layers() -> None:
    assert parse_layers("3-11") == list(range(3, 12))
    assert parse_layers("3,5, 7") == [3, 5, 7]
    assert parse_layers("2-3,8") == [2, 3, 8]
    assert parse_layers([4, 4, 1]) == [1, 4]
    assert parse_layers(None) is None
    for bad in ("11-3", "a-b", "-1", [1, -2]):
        with pytest.raises(TrainError, match="layers"):
            parse_layers(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model_type", "depth", "hidden", "expected"),
    [
        ("qwen3", 36, 4096, (5, 14)),  # Qwen3-8B: the paper's table, not the scaled rule
        ("llama", 28, 3072, (3, 11)),  # the scaled rule reproduces the 28-layer range
        ("llama", 36, 2560, (4, 14)),  # ... and the 36-layer one
        ("llama", 30, 576, (3, 12)),  # SmolLM2-135M, the default CPU model
        ("llama", 4, 128, (0, 2)),  # the test model
        ("llama", 2, 128, (0, 0)),  # always a layer above the last edited one
        ("llama", 1, 128, (0, 0)),
    ],
)
def test_default_layers(model_type: str, depth: int, hidden: int, expected: tuple) -> None:
    config = SimpleNamespace(model_type=model_type, num_hidden_layers=depth, hidden_size=hidden)
    layers = default_layers(config)
    assert (layers[0], layers[-1]) == expected and layers == list(range(layers[0], layers[-1] + 1))


def test_config_checks() -> None:
    assert MEMITConfig(layers="3-5").layers == [3, 4, 5]
    with pytest.raises(TrainError, match=r"field 'mom2_update_weight': must be in \(0, inf\)"):
        MEMITConfig(mom2_update_weight=0)
    with pytest.raises(TrainError, match="field 'kl_prompt': must contain"):
        MEMITConfig(kl_prompt="is a")
    with pytest.raises(TrainError, match="field 'v_num_grad_steps': must be >= 1"):
        MEMITConfig(v_num_grad_steps=0)
    with pytest.raises(
        TrainError, match=r"field 'prompt_format': must be one of \['completion', 'chat'\]"
    ):
        MEMITConfig(prompt_format="qa")


def test_edit_command(
    edit_model_dir: Path, write_edits: Callable[..., Path], tmp_path: Path
) -> None:
    edits = write_edits(2)
    out = tmp_path / "runs" / "edited"
    config = tmp_path / "memit.yaml"
    config.write_text("mom2_samples: 16\nmom2_seq_len: 32\n", encoding="utf-8")
    args = ["edit", "--model", str(edit_model_dir), "--edits", str(edits), "--out", str(out)]
    args += ["--layers", "1-2", "--set", f"stats_dir={tmp_path / 'stats'}", "--config", str(config)]
    args += ["--context-template-tokens", "3", "--v-num-grad-steps", "5"]
    args += ["--set", "mom2_update_weight=10", "--set", "v_num_grad_steps=7"]  # the flag wins
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "memit 2 edits at layers 1-2" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    settings = manifest["config"]
    assert settings["layers"] == [1, 2] and settings["v_num_grad_steps"] == 5
    assert (settings["mom2_samples"], settings["context_template_tokens"]) == (16, 3)
    assert manifest["edits"]["count"] == 2 and len(manifest["edits"]["sha256"]) == 64
    assert set(manifest["timings"]) >= {"load_s", "targets_s", "second_moments_s", "update_s"}
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    # the same command again refuses to replace the folder
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "--overwrite" in str(result.exception)


def test_edit_command_errors(
    write_edits: Callable[..., Path], make_edit: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    record = make_edit(0, "{} resides in", "A B", "C", None)
    del record["meta"]["rewrite"]
    edits = write_edits(records=[record])
    base = ["edit", "--edits", str(edits), "--out", str(tmp_path / "o"), "--model", "/nowhere"]
    result = runner.invoke(app, [*base, "--method", "rome"])
    assert isinstance(result.exception, UserError)
    assert str(result.exception) == "unknown edit method 'rome'; choose one of: memit"
    result = runner.invoke(app, base)  # the edits file fails before the model is loaded
    assert isinstance(result.exception, UserError)
    assert str(result.exception) == (
        f"{edits}:1: missing field 'meta.rewrite' (an edit request needs one)"
    )
    result = runner.invoke(app, [*base, "--set", "kl_factr=1"])
    assert "did you mean 'kl_factor'" in str(result.exception)
    result = runner.invoke(app, [*base, "--set", "layers=4-2"])
    assert "field 'layers': must be like '3-11'" in str(result.exception)
