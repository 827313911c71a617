import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fishertools import FisherError, load_fisher
from fishertools.cli import app, main, make_app
from mixsd_base import UserError

from .conftest import perturbed_checkpoint

runner = CliRunner()


def compute_args(model: Path | str, data: Path, out: Path, *more: str) -> list[str]:
    return ["compute", "--model", str(model), "--data", str(data), "--out", str(out), *more]


def test_compute_then_compare_end_to_end(tiny_model_dir: Path, data_file: Path, tmp_path: Path):
    fisher = tmp_path / "fisher" / "tiny.safetensors"
    result = runner.invoke(
        app,
        compute_args(
            tiny_model_dir, data_file, fisher, "--samples", "5", "--chunk-size", "2", "-q"
        ),
    )
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and load_fisher(fisher).manifest["samples"] == 5

    runs = tmp_path / "runs"
    ckpts = [
        perturbed_checkpoint(
            tiny_model_dir, runs / f"r{i}" / "checkpoint-5", scale=s, seed=i, pattern=p
        )
        for i, (s, p) in enumerate([(0.002, "mlp"), (0.004, "self_attn"), (0.006, "")])
    ]
    forgetting = tmp_path / "forgetting.json"
    forgetting.write_text(
        json.dumps({f"r{i}/checkpoint-5": v for i, v in enumerate([0.1, 0.3, 0.2])})
    )
    out = tmp_path / "report" / "report.json"
    # several checkpoints after one flag, as a shell glob expands them
    result = runner.invoke(
        app,
        [
            "compare",
            "--fisher",
            str(fisher),
            "--base",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--forgetting",
            str(forgetting),
            "-q",
            "--checkpoints",
            *map(str, ckpts),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert [r["name"] for r in report["checkpoints"]] == [
        "r0/checkpoint-5",
        "r1/checkpoint-5",
        "r2/checkpoint-5",
    ]
    assert [r["forgetting"]["forgetting"] for r in report["checkpoints"]] == [0.1, 0.3, 0.2]
    stats = report["correlations"]["forgetting"]["raw_sq"]
    assert stats["n"] == 3 and stats["spearman"] == pytest.approx(0.5)  # ranks (1,2,3) vs (1,3,2)
    assert Path(report["plot"]).is_file() and Path(report["plot"]) == out.with_suffix(".png")
    assert "Pearson" in result.output


def test_resolver_hook(tiny_model_dir: Path, data_file: Path, tmp_path: Path):
    hooked = make_app(resolve=lambda spec: tiny_model_dir if spec == "default" else spec)
    out = tmp_path / "f.safetensors"
    args = compute_args("default", data_file, out, "--samples", "1", "-q")
    assert runner.invoke(hooked, args).exit_code == 0
    again = runner.invoke(hooked, args)
    assert isinstance(again.exception, FisherError) and "--overwrite" in str(again.exception)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "missing.jsonl"], r"missing\.jsonl: data file not found"),
        (["--data", "BAD"], r"bad\.jsonl:2: field 'response': missing field"),
        (["--model", "no/such/folder"], "model path 'no/such/folder' does not exist"),
        (["--out", "x.bin"], "field 'out': must end in .safetensors"),
        (["--include", "nothing*"], "no parameter matches"),
        (["--method", "fast"], "field 'method': 'fast' is not allowed"),
        (["--chunk-size", "0"], "field 'chunk_size': must be >= 1, got 0"),
        (["--dtype", "fp8"], "field 'dtype': must be one of"),
    ],
)
def test_compute_bad_inputs(
    tiny_model_dir: Path,
    data_file: Path,
    write_jsonl: Callable[..., Path],
    tmp_path: Path,
    args: list[str],
    message: str,
):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "q", "response": "a"}, {"prompt": "q"}])
    base = {
        "--model": str(tiny_model_dir),
        "--data": str(data_file),
        "--out": str(tmp_path / "f.safetensors"),
    }
    base.update(
        dict(zip(args[::2], [str(bad) if a == "BAD" else a for a in args[1::2]], strict=True))
    )
    result = runner.invoke(app, ["compute", *[x for kv in base.items() for x in kv], "-q"])
    assert isinstance(result.exception, UserError), result.output
    assert re.search(message, str(result.exception))


def test_compare_bad_inputs(tiny_model_dir: Path, tmp_path: Path):
    result = runner.invoke(
        app,
        [
            "compare",
            "--fisher",
            str(tmp_path / "none.safetensors"),
            "--base",
            str(tiny_model_dir),
            "--out",
            str(tmp_path / "r.json"),
            "--checkpoints",
            str(tiny_model_dir),
        ],
    )
    assert isinstance(result.exception, FisherError) and "Fisher file not found" in str(
        result.exception
    )
    result = runner.invoke(
        app, ["compare", "--fisher", "f", "--base", "b", "--out", str(tmp_path / "r.json")]
    )
    assert "at least one checkpoint" in str(result.exception)


def test_compare_bad_config_value_exits_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    config = tmp_path / "compare.yaml"
    config.write_text("plot: false\nloss_samples: 0\n")
    argv = ["fishertools", "compare", "--fisher", "f.safetensors", "--base", "b",
            "--out", str(tmp_path / "r.json"), "--checkpoints", "c", "--config", str(config)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    assert (
        capsys.readouterr().err == f"error: {config}:2: field 'loss_samples': must be >= 1, got 0\n"
    )


def test_config_file_unknown_key(tiny_model_dir: Path, data_file: Path, tmp_path: Path):
    config = tmp_path / "fisher.yaml"
    config.write_text("chunk_size: 2\nchunk: 3\n")
    result = runner.invoke(
        app,
        compute_args(
            tiny_model_dir, data_file, tmp_path / "f.safetensors", "--config", str(config)
        ),
    )
    assert isinstance(result.exception, UserError)
    assert (
        str(result.exception)
        == f"{config}:2: field 'chunk': unknown key (did you mean 'chunk_size'?)"
    )


def test_main_prints_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    argv = ["fishertools", *compute_args("m", tmp_path / "d.jsonl", tmp_path / "f.safetensors")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'd.jsonl'}: data file not found"
