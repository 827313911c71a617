"""``mixsd run`` end to end on the tiny model, then reuse, redo and the report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mixsd.cli import app


def _config(tmp: Path, model: Path, **changes) -> Path:
    prompts = tmp / "ref_prompts.jsonl"
    prompts.write_text("".join(f'{{"prompt": "Say {w}."}}\n' for w in ("hi", "yes", "no")))
    config = {
        "out": str(tmp / "run"),
        "model": str(model),
        "world": {"preset": "small", "kgfunc": {"enabled": False}},
        "data": {"split": "kgfact/train", "limit": 4},
        "methods": [
            "base",
            "sft",
            "mixsd@0.5",
            {"method": "opsd", "train": {"num_generations": 2, "max_new_tokens": 8}},
        ],
        "rollout": {"batch_size": 4, "max_new_tokens": 8, "max_retries": 1, "verifier": "any"},
        "train": {
            "max_steps": 2,
            "save_steps": 1,
            "per_device_train_batch_size": 2,
            "global_batch_size": 2,
            "warmup_steps": 0,
            "learning_rate": 1e-3,
            "eval_max_new_tokens": 8,
        },
        "eval": {
            "suites": ["indomain", "refloss"],
            "limit": 3,
            "ref_prompts_file": str(prompts),
            "indomain_max_new_tokens": 8,
            "ref_max_new_tokens": 8,
            "batch_size": 4,
        },
        "fisher": {"max_length": 256},
        "nll": {"batch_size": 4},
    }
    config.update(changes)
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(autouse=True)
def accept_any_reply() -> Iterator[None]:
    """A random tiny model never states the answer: a registered verifier that passes all."""
    import kgworld

    with kgworld.VERIFIERS.temporary("any", lambda reply, answer: True):
        yield


def _summary(output: str) -> dict[tuple[str, str], str]:
    """(stage, unit) -> status, from the table ``mixsd run`` prints at the end."""
    lines = output.splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.split()[:3] == ["stage", "unit", "status"]
    )
    rows = [
        line.split() for line in lines[start + 1 :] if not line.startswith(("per stage", "report"))
    ]
    return {(r[0], r[1]): r[2] for r in rows if len(r) >= 4}  # + peak memory, if measured


@pytest.mark.slow
def test_run_end_to_end_then_reuse_and_redo(tmp_path: Path, tiny_model_dir: Path) -> None:
    runner = CliRunner()
    config = _config(tmp_path, tiny_model_dir)
    first = runner.invoke(app, ["run", str(config), "--quiet"])
    assert first.exit_code == 0, first.output
    run = tmp_path / "run"
    for path in (
        "world/manifest.json",
        "data/kgfact/train.jsonl",
        "rollouts/mixsd-a0.5.jsonl",
        "nll/sft.json",
        "nll/mixsd-a0.5.json",
        "train/sft/selection.json",
        "train/opsd/selection.json",
        "eval/base.json",
        "eval/mixsd-a0.5.json",
        "fisher/compare.json",
        "fisher/compare.png",
        "report.md",
        "plots/pareto.png",
        "plots/nll_cdf.png",
    ):
        assert (run / path).exists(), path
    assert len((run / "data/kgfact/train.jsonl").read_text().splitlines()) == 4
    report = (run / "report.md").read_text()
    for heading in ("## Results", "## Training", "## Targets under the base model", "## Fisher"):
        assert heading in report
    # The Pareto figure comes first, then what this budget can test, then the results.
    assert report.index("(plots/pareto.png)") < report.index("## What this run can test")
    assert not (run / "plots/training_frontier.png").exists()  # no adaptive method: no frontier
    assert report.index("## What this run can test") < report.index("## Results")
    assert "| R2 (forgets less at equal accuracy) |" in report
    assert "| mixsd-a0.5 |" in report
    index = json.loads((run / "run.json").read_text())
    assert index["targets"] == {
        "sft": {"kind": "records", "alpha": None},
        "mixsd-a0.5": {"kind": "rollout", "alpha": 0.5},
    }
    mixsd = next(m for m in index["methods"] if m["method"] == "mixsd")
    assert (mixsd["label"], mixsd["kind"], mixsd["rollout"]) == (
        "mixsd-a0.5",
        "rollout",
        "mixsd-a0.5",
    )
    assert "SFT ÷ mixsd-a0.5" in report  # claim R1 found the rollout through run.json
    # The rollout's NLL is paired with the SFT records on the facts the rollout kept.
    rollout_nll = json.loads((run / "nll/mixsd-a0.5.json").read_text())
    assert rollout_nll["files"]["compare"]["path"] == str(run / "data/kgfact/train.jsonl")
    rows = [json.loads(x) for x in (run / "rollouts/mixsd-a0.5.jsonl").read_text().splitlines()]
    kept = [r["id"] for r in rows if r.get("verified") is not False]
    assert rollout_nll["paired"]["ids"] == kept
    assert "paired" not in json.loads((run / "nll/sft.json").read_text())
    if kept:
        assert "| targets (paired with SFT) |" in report

    # The report alone, without plots (mixsd report's own option).
    (run / "plots" / "pareto.png").unlink()
    bare = runner.invoke(app, ["report", str(run), "--set", "plots=false"])
    assert bare.exit_code == 0, bare.output
    assert "![" not in (run / "report.md").read_text()
    assert not (run / "plots" / "pareto.png").exists()
    compare = json.loads((run / "fisher/compare.json").read_text())
    assert len(compare["checkpoints"]) == 3 * 2  # three trained methods, checkpoints 1 and 2
    assert "ran" in first.output

    # Same config: every unit is reused, nothing runs.
    again = runner.invoke(app, ["run", str(config), "--quiet"])
    assert again.exit_code == 0, again.output
    statuses = _summary(again.output)
    assert statuses and set(statuses.values()) == {"reused"}, again.output

    # A changed alpha list redoes only what depends on it.
    changed = _config(tmp_path, tiny_model_dir, methods=["base", "sft", "mixsd@0.3"])
    third = runner.invoke(app, ["run", str(changed), "--quiet"])
    assert third.exit_code == 0, third.output
    rows = _summary(third.output)
    assert rows[("train", "sft")] == "reused"
    assert rows[("eval", "base")] == "reused"
    assert rows[("rollouts", "mixsd-a0.3")] == "ran"

    # Changed rollout settings under the same method name: the old checkpoints go, and the
    # training starts afresh (it must not resume the previous run's last checkpoint).
    stale = run / "train/mixsd-a0.3/checkpoint-2/stale-marker"
    stale.write_text("from the previous inputs")
    rollout = {"batch_size": 4, "max_new_tokens": 6, "max_retries": 1, "verifier": "any"}
    fourth_config = _config(
        tmp_path, tiny_model_dir, methods=["base", "sft", "mixsd@0.3"], rollout=rollout
    )
    fourth = runner.invoke(app, ["run", str(fourth_config), "--quiet"])
    assert fourth.exit_code == 0, fourth.output
    rows = _summary(fourth.output)
    assert rows[("rollouts", "mixsd-a0.3")] == "redone"
    assert rows[("train", "mixsd-a0.3")] == "redone"
    assert rows[("train", "sft")] == "reused"
    assert not stale.exists()
    state = json.loads((run / "train/mixsd-a0.3/trainer_state.json").read_text())
    assert state["global_step"] == 2


def test_bad_config_names_file_line_and_field(tmp_path: Path, tiny_model_dir: Path) -> None:
    runner = CliRunner()
    config = _config(tmp_path, tiny_model_dir)
    text = config.read_text().replace("max_retries: 1", "max_retrys: 1")
    config.write_text(text)
    result = runner.invoke(app, ["run", str(config)])
    assert result.exit_code != 0
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "max_retrys" in t)
    message = str(result.exception) if result.exception else result.output
    assert f"{config}:{line}: field 'rollout.max_retrys'" in message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("methods", "error"),
    [
        (["base", "mixsd"], r":\d+: field 'methods\.1\.alpha': needs an alpha in \[0, 1\]"),
        (["mixsd@1.5"], r"field 'methods\.0\.alpha': needs an alpha"),
        ([{"method": "sft", "alpha": 0.3}], r"field 'methods\.0\.alpha': only mixsd methods"),
        (["sft", "sft"], r"field 'methods': the names \['sft'\] appear twice"),
        (["bogus"], r"field 'methods\.0\.method': 'bogus' is not allowed; choose one of: base"),
        ([{"method": "sft", "nam": "x"}], r"field 'methods\.0\.nam': unknown key"),
    ],
)
def test_bad_methods(tmp_path: Path, tiny_model_dir: Path, methods: list, error: str) -> None:
    from mixsd._run_config import load_run_config
    from mixsd_base import UserError

    with pytest.raises(UserError, match=error):
        load_run_config(_config(tmp_path, tiny_model_dir, methods=methods))


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        (
            {"rollout": {"batch_size": 0}},
            r"run.yaml:\d+: field 'rollout.batch_size': must be >= 1, got 0",
        ),
        ({"rollout": {"model": "x"}}, r"field 'rollout\.model': unknown key"),
        ({"nll": {"batch_size": "big"}}, r"field 'nll\.batch_size': expected an integer"),
        ({"eval": {"suite": ["indomain"]}}, r"field 'eval\.suite': unknown key .*'suites'"),
        ({"fisher": {"loss_samples": 3}}, r"field 'fisher\.loss_samples': unknown key"),
        ({"data": {"indomain": ["twohops"]}}, r"field 'data\.indomain': \['twohops'\] not among"),
        ({"world": {"preset": "huge"}}, r"field 'world\.preset': unknown preset 'huge'"),
        ({"train": {"num_generation": 2}}, r"field 'train\.num_generation': no method here"),
        ({"train": {"output_dir": "x"}}, r"field 'train\.output_dir': set by the pipeline"),
        ({"train": {"warmup_steps": -1}}, r"run.yaml:\d+: field 'methods\.1\.train': warmup_steps"),
        ({"frontier": {"taus": [2.0]}}, r"run.yaml:\d+: field 'frontier\.taus': values must be"),
        ({"frontier": {"data": "x.jsonl"}}, r"field 'frontier\.data': unknown key"),
        ({"frontier": {"seed": 3}}, r"field 'frontier\.seed': unknown key"),
    ],
)
def test_bad_sections_fail_at_load(
    tmp_path: Path, tiny_model_dir: Path, changes: dict, error: str
) -> None:
    """Every stage section is checked when the config loads, naming the file and field."""
    from mixsd._run_config import load_run_config
    from mixsd_base import UserError

    path = _config(tmp_path, tiny_model_dir, **changes)
    with pytest.raises(UserError, match=error) as info:
        load_run_config(path)
    assert str(info.value).startswith(str(path))
    assert not (tmp_path / "run").exists()


def test_sections_are_the_stage_configs(tmp_path: Path, tiny_model_dir: Path) -> None:
    """A section holds its stage config's options, typed, and the pipeline's fields are not
    among them; --set reaches nested keys."""
    from mixsd._run_config import load_run_config
    from mixsd._stages.rollout import rollout_config
    from mixsd_base import parse_overrides

    path = _config(tmp_path, tiny_model_dir)
    config = load_run_config(path, parse_overrides(["rollout.max_retries=5", "seed=3"]))
    assert config.rollout.max_retries == 5 and config.rollout.batch_size == 4
    assert not hasattr(config.rollout, "model") and not hasattr(config.eval, "out")
    built = rollout_config(config, 0.5, "m")
    assert (built.max_retries, built.alpha, built.seed, built.model) == (5, 0.5, 3, "m")
    assert built.out == str((tmp_path / "run" / "rollouts" / "mixsd-a0.5.jsonl").absolute())
    assert config.fisher is not None and config.fisher.max_length == 256
    assert load_run_config(path, parse_overrides(["fisher=null"])).fisher is None


def test_the_target_frontier_runs_in_the_pipeline_and_the_report(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    """A frontier: section runs mixsd frontier on the run's records with its model, seed and
    rollout section, into RUN/frontier; the report shows its table; a rerun reuses it."""
    frontier = {"alphas": [0.5], "taus": [0.2], "kappas": [], "deltas": [], "repairs": []}
    config = _config(
        tmp_path, tiny_model_dir, methods=["base"], train={}, fisher=None, frontier=frontier, seed=4
    )
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    table = json.loads((run / "frontier/frontier.json").read_text())
    assert [s["label"] for s in table["settings"]] == ["alpha 0.5", "gate tau 0.2 (alpha 0.5)"]
    assert (table["examples"], table["seed"], table["attempts"]) == (4, 4, 10)
    gate = [json.loads(x) for x in (run / "frontier/rollouts/gate-tau0.2-a0.5.jsonl").open()]
    assert gate and all(len(r["target_ids"]) <= 8 for r in gate)  # the run's max_new_tokens
    assert json.loads((run / "run.json").read_text())["frontier"] == str(
        run / "frontier/frontier.json"
    )
    report = (run / "report.md").read_text()
    assert "## Target frontier: 4 examples, seed 4" in report
    assert "| gate tau 0.2 (alpha 0.5) |" in report and "(frontier/frontier.png)" in report
    again = runner.invoke(app, ["run", str(config)])
    assert again.exit_code == 0, again.output
    assert _summary(again.output)[("frontier", "frontier")] == "reused"


def test_a_method_with_its_own_rollout_options_gets_its_own_rollout_file(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    """{method: mixsd, alpha: 0.5, rollout: {mixing: gate, tau: 0.2}} beside plain mixsd@0.5:
    two rollout files, the plain one built exactly as before (same settings, same name)."""
    from mixsd._methods import method_label
    from mixsd._run_config import load_run_config
    from mixsd._stages.rollout import rollout_config

    gate = {"method": "mixsd", "alpha": 0.5, "rollout": {"tau": 0.2, "mixing": "gate"}}
    kl = {**gate, "method": "mixsd-kl"}
    path = _config(tmp_path, tiny_model_dir, methods=["base", "mixsd@0.5", gate, kl])
    config = load_run_config(path)
    assert [m.label for m in config.methods] == [
        "base", "mixsd-a0.5", "mixsd-a0.5-gate-tau0.2", "mixsd-kl-a0.5-gate-tau0.2"
    ]  # fmt: skip
    groups = config.rollout_groups()
    assert groups == {"mixsd-a0.5": (0.5, {}), "mixsd-a0.5-gate-tau0.2": (0.5, gate["rollout"])}
    plain = rollout_config(config, 0.5, "m")
    adaptive = rollout_config(config, 0.5, "m", gate["rollout"])
    assert (plain.mixing, adaptive.mixing, adaptive.tau) == ("bernoulli", "gate", 0.2)
    assert Path(adaptive.out).name == "mixsd-a0.5-gate-tau0.2.jsonl"
    assert Path(plain.out).name == "mixsd-a0.5.jsonl"
    assert "mixing" not in plain.settings()  # a paper rollout's fingerprint is unchanged
    summary = config.methods[2].summary()
    assert (summary["rollout"], summary["rollout_options"]) == (
        "mixsd-a0.5-gate-tau0.2",
        gate["rollout"],
    )
    guarded = {"mixing": "gate", "tau": 0.5, "answer_guard": True, "repair": 2}
    assert method_label("mixsd", 1.0, guarded) == "mixsd-a1-gate-answer_guard-repair2-tau0.5"
    assert method_label("mixsd", 0.5, {"answer_guard": False}) == "mixsd-a0.5-no_answer_guard"


@pytest.mark.slow
def test_an_adaptive_method_runs_end_to_end_beside_the_papers(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    """A gate method at alpha 0.5 beside mixsd@0.5: its own rollout file (traced, gate), its
    own training, evaluation and report row; R1 still compares SFT with the paper's file."""
    gate = {"method": "mixsd", "alpha": 0.5, "rollout": {"mixing": "gate", "tau": 0.2}}
    config = _config(
        tmp_path,
        tiny_model_dir,
        methods=["base", "sft", "mixsd@0.5", gate],
        fisher=None,
    )
    result = CliRunner().invoke(app, ["run", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    label = "mixsd-a0.5-gate-tau0.2"
    rows = [json.loads(x) for x in (run / f"rollouts/{label}.jsonl").read_text().splitlines()]
    assert rows and {r["mixing"] for r in rows} == {"gate"}
    plain = [json.loads(x) for x in (run / "rollouts/mixsd-a0.5.jsonl").read_text().splitlines()]
    assert "mixing" not in plain[0]
    assert (run / f"train/{label}/selection.json").is_file()
    assert (run / f"eval/{label}.json").is_file()
    index = json.loads((run / "run.json").read_text())
    assert index["targets"][label] == {"kind": "rollout", "alpha": 0.5, "options": gate["rollout"]}
    assert set(index["rollouts"]) == {"0.5", "0.5-gate-tau0.2"}
    report = (run / "report.md").read_text()
    assert f"| {label} |" in report and "SFT ÷ mixsd-a0.5 " in report
    frontier = report.split("## Adaptive mixing against the fixed alphas")[1]
    assert f"| {label} | " in frontier and "| mixsd-a0.5 (fixed) |" in frontier
    assert "(plots/training_frontier.png)" in frontier
    assert (run / "plots/training_frontier.png").is_file()


@pytest.mark.parametrize(
    ("method", "error"),
    [
        ({"method": "sft", "rollout": {"mixing": "gate"}}, "only mixsd methods take rollout"),
        (
            {"method": "mixsd", "alpha": 0.5, "rollout": {"alpha": 0.3}},
            r"\['alpha'\] are set by the run",
        ),
        (
            {"method": "mixsd", "alpha": 0.5, "rollout": {"mixing": "gat"}},
            r"field 'methods': mixsd-a0.5-gat: rollout \(mixing\): must be one of",
        ),
        (
            {"method": "mixsd", "alpha": 0.5, "rollout": {"taux": 1}},
            "field 'methods': mixsd-a0.5-taux1: rollout: .*unexpected keyword argument 'taux'",
        ),
    ],
)
def test_bad_rollout_options_of_a_method_fail_at_load(
    tmp_path: Path, tiny_model_dir: Path, method: dict, error: str
) -> None:
    from mixsd._run_config import load_run_config
    from mixsd_base import UserError

    path = _config(tmp_path, tiny_model_dir, methods=["base", method])
    with pytest.raises(UserError, match=error) as info:
        load_run_config(path)
    assert str(info.value).startswith(str(path))


REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in sorted((REPO / "configs").rglob("*.yaml"))
        # trainer files (train/), accelerate launch configs (accelerate/) and `mixsd frontier`
        # configs (frontier/) are no run configs
        if p.parent.name not in ("train", "accelerate", "frontier") and not p.name.startswith("_")
    ],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_shipped_run_configs_are_valid(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mixsd._run_config import load_run_config

    monkeypatch.chdir(REPO)  # the configs name their trainer file relative to the repository
    config = load_run_config(path.relative_to(REPO))  # every stage's config is built here
    assert any(m.method == "sft" for m in config.methods)


@pytest.mark.slow
def test_edit_run_with_memit(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The editing setting: edits as training data, MEMIT beside SFT, the edit suite."""
    config = _config(
        tmp_path,
        tiny_model_dir,
        data={"split": "edit/train", "limit": 2},
        methods=[
            "base",
            "sft",
            {
                "method": "memit",
                "train": {"layers": "0-1", "mom2_samples": 8, "v_num_grad_steps": 2},
            },
        ],
        eval={"suites": ["edit"], "limit": 2, "indomain_max_new_tokens": 8, "batch_size": 4},
        fisher=None,
    )
    result = CliRunner().invoke(app, ["run", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    assert (run / "train/memit/model/model.safetensors").is_file()
    assert len((run / "data/edit/train.jsonl").read_text().splitlines()) == 2
    paraphrases = (run / "data/edit/paraphrase.jsonl").read_text().splitlines()
    assert len(paraphrases) == 2  # only the chosen edits' paraphrases
    scores = json.loads((run / "eval/memit.json").read_text())["edit"]
    assert set(scores) >= {"edit/train", "edit/locality"}
    assert "| memit |" in (run / "report.md").read_text()


@pytest.mark.slow
def test_rollouts_that_keep_nothing_skip_their_method(tmp_path: Path, tiny_model_dir: Path) -> None:
    """A random model never boxes the answer: the MixSD method is skipped, the run goes on."""
    config = _config(
        tmp_path,
        tiny_model_dir,
        methods=["base", "mixsd@0.5"],
        rollout={"batch_size": 4, "max_new_tokens": 4, "max_retries": 0, "verifier": "boxed"},
        eval={"suites": ["indomain"], "limit": 2, "indomain_max_new_tokens": 4},
        fisher=None,
    )
    result = CliRunner().invoke(app, ["run", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "no target passed the verifier" in result.output
    run = tmp_path / "run"
    assert not (run / "train" / "mixsd-a0.5").exists()
    assert json.loads((run / "run.json").read_text())["runs"] == {}
    assert "| base |" in (run / "report.md").read_text()
