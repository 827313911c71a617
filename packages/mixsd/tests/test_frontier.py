"""``mixsd frontier`` on the tiny model: three settings, the table's numbers against the rollout
files they come from, the paired and SFT-filled NLL, the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mixsd._frontier import FrontierConfig, frontier_settings, run_frontier
from mixsd_base import ConfigError


def _every_third(reply: str, answer: str) -> bool:
    return len(reply) % 3 != 0


def _config(data: Path, out: Path, **values: Any) -> FrontierConfig:
    settings: dict[str, Any] = dict(
        alphas=[0.5], taus=[1e-3], kappas=[], deltas=[8.0], repairs=[], attempts=3
    )
    config = FrontierConfig(data=str(data), out=str(out), **{**settings, **values})
    config.rollout.max_new_tokens = 8
    config.rollout.batch_size = 4
    return config


def test_frontier_table(tiny_lm, make_records, write_jsonl, tmp_path) -> None:
    model, tok = tiny_lm
    data = write_jsonl(tmp_path / "train.jsonl", make_records())
    config = _config(data, tmp_path / "frontier")
    table = run_frontier(config, model=model, tokenizer=tok, verifier=_every_third)
    labels = [r["label"] for r in table["settings"]]
    assert labels == ["alpha 0.5", "gate tau 0.001 (alpha 0.5)", "guard delta 8"]
    kept_ids = []
    for row in table["settings"]:
        records = [json.loads(line) for line in Path(row["file"]).read_text().splitlines()]
        manifest = json.loads(Path(row["file"]).with_suffix(".manifest.json").read_text())
        kept_ids.append({r["id"] for r in records})
        assert row["kept"] == len(records) == manifest["counts"]["kept"]
        assert set(row["yield_within"]) == {"1", "3"}  # budgets up to attempts only
        assert row["yield_within"]["1"] == sum(r["attempt"] == 0 for r in records) / 8
        assert row["yield_within"]["3"] == len(records) / 8
        assert row["passes_per_kept"] == manifest["decoder_passes"] / len(records)
        assert row["answer_guard"] is False
        sides = "".join(r["sides"] for r in records)
        assert row["effective_naive_share"] == sides.count("N") / (len(sides) - sides.count("."))
        nll = row["nll"]
        assert nll["kept"]["records"] == len(records)
        assert nll["filled"]["records"] == 8  # failed examples count with their SFT target
    assert table["paired_examples"] == len(set.intersection(*kept_ids)) >= 1
    assert all(r["nll"]["paired"]["records"] == table["paired_examples"] for r in table["settings"])
    union = set.union(*kept_ids)
    assert table["verified_by_any"] == len(union)
    assert table["never_verified"] == [r["id"] for r in make_records() if r["id"] not in union]
    # The settings differ: guard ignores the mask and keeps other targets than alpha 0.5.
    assert (
        len(
            {
                json.dumps(r["yield_within"]) + str(r["effective_naive_share"])
                for r in table["settings"]
            }
        )
        > 1
    )
    out = Path(config.out)
    markdown = (out / "frontier.md").read_text()
    assert all(f"| {label} |" in markdown for label in labels)
    assert f"Verified by at least one setting: {len(union)} of 8" in markdown
    assert (out / "frontier.png").stat().st_size > 0
    assert json.loads((out / "frontier.json").read_text()) == table
    # A rerun reuses every finished rollout: same table.
    again = run_frontier(config, model=model, tokenizer=tok, verifier=_every_third)
    assert again == table


def test_frontier_settings_and_checks(tmp_path) -> None:
    config = FrontierConfig(data="d.jsonl", out=str(tmp_path))
    settings = frontier_settings(config)
    assert [s.label for s in settings][:8] == [f"alpha {0.1 * k:g}" for k in range(8)]
    assert {s.values["mixing"] for s in settings} == {"bernoulli", "gate", "exchange", "guard"}
    assert len({s.stem for s in settings}) == len(settings)
    with pytest.raises(ConfigError, match="field 'taus'"):
        FrontierConfig(data="d", out="o", taus=[2.0])
    with pytest.raises(ConfigError, match="field 'repairs'"):
        FrontierConfig(data="d", out="o", repairs=[0])
    with pytest.raises(ConfigError, match="field 'kappas': must be >= 0"):
        FrontierConfig(data="d", out="o", kappas=[-1.0])


def test_frontier_extra_settings_combine_policies_and_repair() -> None:
    """``settings`` adds combinations (a policy with repair, a gate at its own alpha), named by
    the same rule as the lists' settings; bad entries fail at load naming the entry."""
    extra = [
        {"mixing": "gate", "alpha": 0.8, "tau": 0.2, "repair": 2},
        {"repair": 3},  # bernoulli at policy_alpha
        {"mixing": "guard", "delta": 4, "repair": 1},
        {"mixing": "gate", "alpha": 1.0, "tau": 0.5, "answer_guard": True, "repair": 2},
        {"alpha": 0.5, "answer_guard": True},
    ]
    config = FrontierConfig(
        data="d", out="o", alphas=[0.5], taus=[0.2], kappas=[], deltas=[], repairs=[],
        settings=extra,
    )  # fmt: skip
    settings = frontier_settings(config)
    assert [(s.label, s.stem) for s in settings] == [
        ("alpha 0.5", "alpha-0.5"),
        ("gate tau 0.2 (alpha 0.5)", "gate-tau0.2-a0.5"),
        ("gate tau 0.2 (alpha 0.8) + repair 2", "gate-tau0.2-a0.8-repair2"),
        ("repair 3 (alpha 0.5)", "repair3-a0.5"),
        ("guard delta 4 + repair 1", "guard-delta4-repair1"),
        (
            "gate tau 0.5 (alpha 1) + answer guard + repair 2",
            "gate-tau0.5-a1-answerguard-repair2",
        ),
        ("alpha 0.5 + answer guard", "alpha-0.5-answerguard"),
    ]
    assert settings[2].values == {"mixing": "gate", "alpha": 0.8, "tau": 0.2, "repair": 2}
    for bad, error in [
        ({"mixing": "gate"}, "field 'settings.0': mixing 'gate' needs its tau"),
        ({"mixing": "coin"}, "field 'settings.0': mixing 'coin' is not one of"),
        ({"alpha": 0.5, "beta": 1}, r"field 'settings.0': unknown keys \['beta'\]"),
        ({"mixing": "gate", "tau": 2.0}, "field 'settings.0.tau': must be in"),
        ({"repair": -1}, "field 'settings.0.repair': must be >= 0"),
        (
            {"mixing": "guard", "delta": 2, "answer_guard": True},
            "field 'settings.0.answer_guard': guard has the answer terms already",
        ),
        ({"alpha": 0.5}, r"field 'settings': settings \['alpha-0.5'\] are listed twice"),
    ]:
        with pytest.raises(ConfigError, match=error):
            FrontierConfig(data="d", out="o", alphas=[0.5], settings=[bad])


def test_frontier_command(tiny_model_dir, make_records, write_jsonl, tmp_path) -> None:
    from typer.testing import CliRunner

    from mixsd.cli import app

    data = write_jsonl(tmp_path / "train.jsonl", make_records(3))
    out = tmp_path / "f"
    args = ["frontier", "--model", str(tiny_model_dir), "--data", str(data), "--out", str(out)]
    settings = ["--alphas", "0.3", "--taus", "0.2", "--kappas", "1", "--deltas", "2"]
    extra = ["--repairs", "1", "--attempts", "2", "--set", "rollout.max_new_tokens=6", "--quiet"]
    result = CliRunner().invoke(app, [*args, *settings, *extra])
    assert result.exit_code == 0, result.output
    assert "| exchange kappa 1 |" in result.output and (out / "frontier.md").is_file()
    assert len(json.loads((out / "frontier.json").read_text())["settings"]) == 5


def test_only_the_blind_mask_alone_is_drawn_as_a_fixed_alpha() -> None:
    from mixsd._frontier import paper_alphas

    def row(mixing: str, repair: int = 0, guard: bool = False) -> dict:
        return {"mixing": mixing, "repair": repair, "answer_guard": guard}

    rows = [row("bernoulli"), row("bernoulli", repair=1), row("bernoulli", guard=True),
            row("gate"), {"mixing": "bernoulli", "repair": 0}]  # fmt: skip
    # an older frontier.json without the answer_guard field reads as unguarded
    assert paper_alphas(rows) == [rows[0], rows[4]]


def test_a_cascade_passes_each_stages_failures_to_the_next(
    tiny_lm, make_records, write_jsonl, tmp_path
) -> None:
    """A cascade decodes stage k once on the examples no earlier stage kept: its attempt k is
    stage k's decode, and its row counts every stage's passes."""
    model, tok = tiny_lm
    data = write_jsonl(tmp_path / "train.jsonl", make_records())
    stages = [{"alpha": 1.0, "answer_guard": True}, {"mixing": "gate", "tau": 0.5, "alpha": 1.0}]
    config = _config(data, tmp_path / "frontier", taus=[], deltas=[], cascades=[stages])
    table = run_frontier(config, model=model, tokenizer=tok, verifier=_every_third)
    row = table["settings"][-1]
    assert row["label"] == "cascade: alpha 1 + answer guard → gate tau 0.5 (alpha 1)"
    folder = tmp_path / "frontier" / "rollouts" / "cascade-alpha-1-answerguard--gate-tau0.5-a1"
    read = lambda path: [json.loads(x) for x in path.read_text().splitlines()]  # noqa: E731
    first, second = read(folder / "stage-0.jsonl"), read(folder / "stage-1.jsonl")
    # Stage 1 decodes exactly the examples stage 0 dropped, in data order.
    ids = [r["id"] for r in make_records()]
    kept_first = {r["id"] for r in first}
    assert [r["id"] for r in read(folder / "stage-1.data.jsonl")] == [
        i for i in ids if i not in kept_first
    ]
    merged = read(Path(row["file"]))
    assert [r["id"] for r in merged] == [
        i for i in ids if i in kept_first | {r["id"] for r in second}
    ]
    assert [r["attempt"] for r in merged] == [0 if r["id"] in kept_first else 1 for r in merged]
    assert row["kept"] == len(first) + len(second) == len(merged)
    assert row["yield_within"]["1"] == len(first) / 8
    assert row["decoder_passes"] == 8 + (8 - len(first))  # one decode per example per stage
    sides = "".join(r["sides"] for r in merged)
    assert row["effective_naive_share"] == sides.count("N") / (len(sides) - sides.count("."))
    assert 0 < len(first) < 8  # both stages did work: the test can tell them apart
    # A rerun reuses both stages' files: the same table.
    assert run_frontier(config, model=model, tokenizer=tok, verifier=_every_third) == table


@pytest.mark.parametrize(
    ("cascade", "error"),
    [
        ([{"alpha": 1.0}], "field 'cascades.0': give a list of 2 to attempts"),
        ([{"alpha": 1.0}, {"repair": 2}], "field 'cascades.0.1.repair': a stage decodes once"),
        ([{"alpha": 1.0}, {"mixing": "gate", "tau": 2.0}], "field 'cascades.0.1.tau': must be in"),
        ([{"alpha": 1.0}, {"mixing": "gate"}], "field 'cascades.0.1': mixing 'gate' needs its tau"),
    ],
)
def test_bad_cascades_fail_at_load_naming_the_stage(cascade, error) -> None:
    with pytest.raises(ConfigError, match=error):
        FrontierConfig(data="d", out="o", alphas=[0.5], cascades=[cascade], attempts=3)


def test_a_frontier_needs_something_to_decode() -> None:
    none: dict[str, Any] = dict(alphas=[], taus=[], kappas=[], deltas=[], repairs=[])
    with pytest.raises(ConfigError, match="field 'alphas': no setting to decode"):
        FrontierConfig(data="d", out="o", **none)
    # A cascade alone is enough.
    FrontierConfig(data="d", out="o", cascades=[[{"alpha": 1.0}, {"alpha": 0.0}]], **none)


REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "path", sorted((REPO / "configs" / "frontier").glob("*.yaml")), ids=lambda p: p.name
)
def test_shipped_frontier_configs_are_valid(path: Path) -> None:
    from mixsd_base import load_config

    config = load_config(FrontierConfig, path)  # every setting's and stage's config is built
    assert frontier_settings(config) and config.attempts >= 1
