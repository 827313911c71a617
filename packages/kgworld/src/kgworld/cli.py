"""The ``kgworld`` command line (also mounted as ``mixsd world``): gen, config, stats, check,
import-mquake, import-qa."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

try:
    import typer
except ImportError:  # pragma: no cover - only without the cli extra
    sys.exit("kgworld's command line needs the cli extra: pip install 'kgworld[cli]'")

from kgworld._config import KGWorldError, WorldConfig, load_config, resolve_config
from mixsd_base import check_output, config_help, parse_overrides, run_cli

app = typer.Typer(
    name="kgworld",
    help="Fictional knowledge-graph worlds and the KGFact / KGFunc datasets built from them.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def gen(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (must be empty or new).")],
    preset: Annotated[
        str | None, typer.Option(help="Size preset: small (5 x 10) or large (7 x 25).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 42).")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML/JSON config file.")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a key: kgfact.domains=6.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
) -> None:
    """Generate a world: manifest.json, graph.json and the split JSONL files."""
    from kgworld._world import check_output_dir, generate

    overrides = {"preset": preset, "seed": seed, **parse_overrides(set_ or [])}
    world_config = load_config(config, overrides) if config else resolve_config(None, overrides)
    check_output_dir(out.absolute(), overwrite=overwrite)  # fail before any work
    progress = None if quiet else (lambda line: typer.echo(line, err=True))
    world = generate(world_config, progress)
    path = world.write(out, overwrite=overwrite)
    counts = ", ".join(f"{name} {n}" for name, n in world.counts().items())
    typer.echo(f"wrote {path}: {len(world.kg.facts)} facts; {counts}")


@app.command("config")
def show_config(
    preset: Annotated[str | None, typer.Option(help="Resolve this preset first.")] = None,
) -> None:
    """Print every knob as a commented YAML config (a starting point for --config)."""
    resolved = resolve_config(None, {"preset": preset}).to_dict()
    section = None
    for key, _, text in config_help(WorldConfig):
        parent, _, leaf = key.rpartition(".")
        if parent != section and parent:
            typer.echo(f"{parent}:")
            section = parent
        node: Any = resolved
        for part in key.split("."):
            node = node[part]
        indent = "  " if parent else ""
        typer.echo(f"{indent}# {text}")
        typer.echo(f"{indent}{leaf}: {json.dumps(node)}")


@app.command()
def stats(world_dir: Annotated[Path, typer.Argument(help="A folder written by gen.")]) -> None:
    """Counts per split, relation and domain."""
    from kgworld._check import world_stats
    from kgworld._world import load

    for section, counts in world_stats(load(world_dir)).items():
        typer.echo(f"{section}:")
        for name, n in counts.items():
            typer.echo(f"  {name}: {n}")


@app.command()
def check(world_dir: Annotated[Path, typer.Argument(help="A folder written by gen.")]) -> None:
    """Re-verify every invariant; exit 1 naming the first violation."""
    from kgworld._check import check_world
    from kgworld._world import load

    problems = check_world(load(world_dir))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise KGWorldError(f"{problems[0]}{more}", path=world_dir)
    typer.echo(f"{world_dir}: ok")


@app.command("import-mquake")
def import_mquake_command(
    source: Annotated[Path, typer.Argument(help="MQuAKE-format JSON (a list of cases).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (must be empty or new).")],
    instruction: Annotated[
        str | None,
        typer.Option(
            help="Instruction appended to every question ('' for none; default: the "
            "one-sentence instruction, which suits the statement targets written)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
) -> None:
    """Convert MQuAKE cases to OUT/edit/{train,multihop}.jsonl (+ manifest.json)."""
    from kgworld._mquake import DEFAULT_INSTRUCTION, import_mquake

    text = DEFAULT_INSTRUCTION if instruction is None else instruction
    path = import_mquake(source, out, instruction=text, overwrite=overwrite)
    counts = json.loads((path / "manifest.json").read_text(encoding="utf-8"))["counts"]
    typer.echo(f"wrote {path}: {counts['edit/train']} edits, {counts['edit/multihop']} multi-hop")


@app.command("import-qa")
def import_qa_command(
    source: Annotated[
        Path, typer.Argument(help="Question-answer file: .csv (SimpleQA's), .jsonl or .parquet.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (must be empty or new).")],
    question_col: Annotated[
        str | None,
        typer.Option(
            help="Question column (default: 'problem' if the file has it, else 'question')."
        ),
    ] = None,
    answer_col: Annotated[str, typer.Option(help="Answer column.")] = "answer",
    aliases_col: Annotated[
        str | None,
        typer.Option(help="Column of other accepted answers: a list, a JSON list or 'a | b'."),
    ] = None,
    skip_bad_rows: Annotated[
        bool, typer.Option(help="Leave bad rows out and list them, instead of stopping.")
    ] = False,
    val_fraction: Annotated[
        float, typer.Option(help="Share of questions held out as qa/validation, in [0, 1).")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the train / validation split.")] = 42,
    instruction: Annotated[
        str | None,
        typer.Option(
            help="Instruction after every question ('' for none; default: answer "
            "concisely within \\boxed{})."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
) -> None:
    """Convert a question-answer file to OUT/qa/{train,validation}.jsonl (+ manifest.json)."""
    from kgworld._qa import QA_INSTRUCTION, import_qa

    check_output(out, folder=True)  # fail before any work
    path = import_qa(
        source,
        out,
        question_col=question_col,
        answer_col=answer_col,
        aliases_col=aliases_col,
        skip_bad_rows=skip_bad_rows,
        val_fraction=val_fraction,
        seed=seed,
        instruction=QA_INSTRUCTION if instruction is None else instruction,
        overwrite=overwrite,
    )
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["skipped"]:
        where = f"row {entry['row']}" + (f" (line {entry['line']})" if entry["line"] else "")
        column = f", column {entry['column']!r}" if entry["column"] else ""
        typer.echo(f"skipped {where}{column}: {entry['problem']}", err=True)
    counts = manifest["counts"]
    typer.echo(
        f"wrote {path}: {counts['qa/train']} train, {counts['qa/validation']} validation "
        f"({counts['skipped']} skipped, {counts['duplicates']} duplicates)"
    )


def main() -> None:
    """Console entry point: a user error is one line on stderr and exit code 1
    (``MIXSD_DEBUG=1`` shows the traceback)."""
    run_cli(app)
