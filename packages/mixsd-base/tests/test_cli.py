from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from typer.testing import CliRunner

from mixsd_base import ConfigError, config_command


@dataclass
class Opts:
    alpha: float = field(default=0.5, metadata={"help": "Mixing probability p[i]."})
    name: str = field(default="x", metadata={"help": "A name."})
    greedy: bool = field(default=True, metadata={"help": "Greedy decoding."})
    tags: list[str] = field(default_factory=list, metadata={"help": "Tags (--set only)."})

    def __post_init__(self) -> None:
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"must be in [0, 1], got {self.alpha}", field="alpha")


app = typer.Typer()


@app.command()
@config_command(Opts)
def show(
    config: Opts,
    verbose: Annotated[bool, typer.Option("--loud", help="Say more.")] = False,
) -> None:
    typer.echo(f"{config.alpha} {config.name} {config.greedy} {config.tags} {verbose}")


def test_flags_set_and_config_file(tmp_path):
    path = tmp_path / "o.yaml"
    path.write_text("alpha: 0.25\nname: file\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["--config", str(path), "--set", "tags=[a, b]", "--name", "flag", "--no-greedy", "--loud"],
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "0.25 flag False ['a', 'b'] True"  # own option's own name
    help_text = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert "--set" in help_text
    # field help is plain text (Typer's rich markup would eat [i]); the default is shown
    assert "Mixing probability p[i]. [default: 0.5]" in help_text


@dataclass
class Listed:
    out: str = field(metadata={"help": "Where to write."})
    suites: list[str] = field(default_factory=lambda: ["a"], metadata={"help": "Suites."})
    data: Path | None = field(default=None, metadata={"help": "A file."})


listed_app = typer.Typer()


@listed_app.command()
@config_command(Listed, lists=True, aliases={"suites": ("--suite",)})
def listed(config: Listed) -> None:
    typer.echo(f"{config.out} {config.suites} {config.data!r}")


def test_list_flags_aliases_paths_and_required_fields(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        listed_app, ["--out", "o", "--suites", "x", "--suite", "y", "--data", "d.jsonl"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "o ['x', 'y'] PosixPath('d.jsonl')"
    result = runner.invoke(listed_app, ["--out", "o"])  # a list flag not given keeps the default
    assert result.output.strip() == "o ['a'] None"
    result = runner.invoke(listed_app, [])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception) == "field 'out': required: it has no default"


_SCRIPT = """
from dataclasses import dataclass
import typer
from mixsd_base import ConfigError, config_command, run_cli

@dataclass
class O:
    alpha: float = 0.5
    def __post_init__(self):
        if self.alpha > 1:
            raise ConfigError("must be <= 1", field="alpha")

app = typer.Typer()

@app.command()
@config_command(O)
def run(config: O) -> None:
    print(config.alpha)

run_cli(app)
"""


def test_user_error_is_one_line_exit_1(tmp_path):
    script = tmp_path / "cli.py"
    script.write_text(_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), "--alpha", "2"], capture_output=True, text=True
    )
    assert (done.returncode, done.stderr) == (1, "error: field 'alpha': must be <= 1\n")
    done = subprocess.run(
        [sys.executable, str(script), "--alpha", "2"],
        capture_output=True,
        text=True,
        env={**os.environ, "MIXSD_DEBUG": "1"},
    )
    assert done.returncode == 1 and "Traceback" in done.stderr


@dataclass
class Short:
    out: str = ""
    steps: int = 1


@dataclass
class Long(Short):
    width: int = 2


chosen_app = typer.Typer()


@chosen_app.command()
@config_command(
    None,
    choose=lambda params: Long if params["kind"] == "long" else Short,
    param_fields={"where": "out"},
)
def chosen(
    config: Short,
    kind: Annotated[str, typer.Option()] = "short",
    where: Annotated[str | None, typer.Option("--where")] = None,
) -> None:
    typer.echo(f"{type(config).__name__} {config.out} {config.steps} {where}")


def test_class_chosen_by_an_option_and_params_that_set_fields():
    runner = CliRunner()
    result = runner.invoke(chosen_app, ["--kind", "long", "--where", "o", "--set", "width=3"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Long o 1 o"
    result = runner.invoke(chosen_app, ["--set", "out=s", "--set", "steps=4"])
    assert result.output.strip() == "Short s 4 None"
    result = runner.invoke(chosen_app, ["--set", "out=s", "--where", "w"])  # param beats --set
    assert result.output.strip() == "Short w 1 w"
    result = runner.invoke(chosen_app, ["--set", "width=3"])  # a field of the other class
    assert isinstance(result.exception, ConfigError) and "width" in str(result.exception)
