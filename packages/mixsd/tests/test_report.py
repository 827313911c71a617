"""The report reads what each target file is from run.json, never from its name."""

from __future__ import annotations

import pytest

from mixsd._report import _paired, _targets, claims, nll_table


def _summary(share: float) -> dict:
    return {"records": 4, "tokens": 40, "mean_nll": 1.0, "share_above": {"8": share}}


def test_claim_r1_compares_the_records_with_the_paper_alpha_by_kind():
    nll = {"canon": _summary(0.2), "other": _summary(0.1), "mine": _summary(0.05)}
    targets = {
        "canon": {"kind": "records", "alpha": None},
        "other": {"kind": "rollout", "alpha": 0.3},
        "mine": {"kind": "rollout", "alpha": 0.5},
    }
    data = {"rows": [], "nll": nll, "targets": targets, "fisher": None}
    (claim, measured, holds), *_ = claims(data)
    assert "SFT ÷ mine" in claim
    assert measured == "20.00% ÷ 5.00% = 4.00×" and holds == "yes"
    table, ratios = nll_table(nll, targets)
    assert ratios == {"other": 2.0, "mine": 4.0}  # the records' own row has no ratio
    assert "| canon | 4 | 40 | 1.000 | 20.00% | 1.00× |" in table


def test_run_json_without_targets_gets_them_from_the_same_label_functions():
    run = {
        "methods": [
            {"method": "sft", "alpha": None, "label": "sft"},
            {"method": "mixsd-kl", "alpha": 0.3, "label": "mixsd-kl-a0.3"},
        ],
        "nll": {"sft": "nll/sft.json", "mixsd-a0.3": "nll/mixsd-a0.3.json"},
    }
    assert _targets(run) == {
        "sft": {"kind": "records", "alpha": None},
        "mixsd-a0.3": {"kind": "rollout", "alpha": 0.3},
    }
    with_targets = {**run, "targets": {"x": {"kind": "records", "alpha": None}}}
    assert _targets(with_targets) == with_targets["targets"]


def test_fisher_table_reads_delta_nll_and_names_it_apart_from_delta_l_ref():
    from mixsd._report import fisher_table

    row = {
        "name": "sft/checkpoint-2",
        "totals": {"raw_sq": 2.0, "fisher_weighted": 0.5, "rho": 0.25},
    }
    stats = {"rho": {"pearson": 0.6, "spearman": 0.5, "n": 3}}
    new = {
        "checkpoints": [{**row, "forgetting": {"delta_nll": 0.039}}],
        "correlations": {"delta_nll": stats},
    }
    table = fisher_table(new)
    assert "| sft/checkpoint-2 | 2 | 0.5 | 0.250 | 0.0390 |" in table
    assert "ΔNLL (reference set, mean per sample)" in table and "forgetting" not in table
    assert "Pearson r(ρ, ΔNLL) = 0.600" in table
    # A compare.json written before fishertools named the measure delta_nll.
    old = {
        "checkpoints": [{**row, "forgetting": {"measured_loss_increase": 0.039}}],
        "correlations": {"measured_loss_increase": stats},
    }
    assert fisher_table(old) == table


def _side(tokens: int, above5: int, above8: int) -> dict:
    return {
        "tokens": tokens,
        "tokens_above": {"5": above5, "8": above8},
        "share_above": {"5": above5 / tokens, "8": above8 / tokens},
    }


def test_r1_and_nll_table_use_the_paired_figures_when_a_file_has_them():
    # Unpaired: SFT's 16 facts (20%) against the 5 the rollout kept (10%): 2x.
    nll = {"sft": _summary(0.2), "mixsd-a0.5": _summary(0.1), "mixsd-a0.3": _summary(0.1)}
    targets = {
        "sft": {"kind": "records", "alpha": None},
        "mixsd-a0.5": {"kind": "rollout", "alpha": 0.5},
        "mixsd-a0.3": {"kind": "rollout", "alpha": 0.3},
    }
    # Paired on the 5 kept facts: SFT 40 of 100 tokens above 8, MixSD 5 of 50: 4x.
    paired = {
        "n": 5,
        "compare": _side(100, 50, 40),
        "data": _side(50, 10, 5),
        "compare_over_data": {"5": 2.5, "8": 4.0},
        "overlap": {"8": {"compare_high_in_data": 0.875, "compare_high_examples": 4}},
    }
    files = {
        "sft": {"paired": None},
        "mixsd-a0.5": {"paired": paired},
        "mixsd-a0.3": {},  # written before the paired section
    }
    assert _paired(files) == {"mixsd-a0.5": paired}
    assert _paired({"x": {"paired": {**paired, "n": 0}}}) == {}  # no id in common

    data = {"rows": [], "nll": nll, "targets": targets, "fisher": None}
    (_, measured, holds), *_ = claims({**data, "nll_paired": _paired(files)})
    assert measured == "paired, n = 5: 40.00% ÷ 10.00% = 4.00×" and holds == "yes"
    (_, measured, holds), *_ = claims(data)  # an old run: the unpaired shares
    assert measured == "20.00% ÷ 10.00% = 2.00×" and holds == "**no**"

    table, ratios = nll_table(nll, targets, _paired(files))
    assert ratios == {"mixsd-a0.5": 4.0, "mixsd-a0.3": 2.0}
    assert "| mixsd-a0.5 | 4 | 40 | 1.000 | 10.00% | 4.00× (paired, n = 5) |" in table
    assert "| mixsd-a0.3 | 4 | 40 | 1.000 | 10.00% | 2.00× |" in table
    assert (
        "| mixsd-a0.5 | 5 | 100 / 50 | 50 (50.0%) / 10 (20.0%) | 40 (40.0%) / 5 (10.0%) "
        "| 4.00× | 87.5% (of 4) |"
    ) in table
    assert "paired" not in nll_table(nll, targets)[0]


def _r4_run(tmp_path, base_heldout: dict, checkpoints: dict) -> dict:
    """A run folder with eval/ and fisher/ files: ``checkpoints`` maps a checkpoint name
    (``label/checkpoint-N``) to ``(rho, raw_sq, eval or None, selected?)``; returns ``collect``."""
    from mixsd._report import collect
    from mixsd_base import write_json

    run = tmp_path / "run"
    evals = {"base": run / "eval/base.json"}
    write_json(evals["base"], {"model": "base-model", "heldout": base_heldout})
    rows = []
    for i, (name, (rho, raw, result, selected)) in enumerate(checkpoints.items()):
        path = run / "train" / name
        rows.append(
            {
                "name": name,
                "path": str(path),
                "totals": {"rho": rho, "raw_sq": raw, "fisher_weighted": rho * raw},
                "forgetting": {"delta_nll": 0.01 * i},
            }
        )
        if result is None:
            continue
        label = name.split("/")[0]
        out = run / "eval" / f"{label}.json" if selected else run / "fisher/evals" / f"{i}.json"
        write_json(out, {"model": str(path), **result})
        if selected:
            evals[label] = out
    compare = run / "fisher/compare.json"
    write_json(compare, {"checkpoints": rows, "correlations": {}})
    write_json(
        run / "run.json",
        {
            "evals": {k: str(v) for k, v in evals.items()},
            "runs": {},
            "methods": [],
            "nll": {},
            "targets": {},
            "fisher": str(compare),
            "model": "base-model",
            "data": "records.jsonl",
        },
    )
    return collect(run)


def _heldout(**scores: float) -> dict:
    return {"heldout": {task: {"score": s} for task, s in scores.items()}}


def test_r4_pools_every_checkpoint_with_a_heldout_drop(tmp_path):
    """Forgetting = base minus checkpoint, averaged over the benchmarks that ran, on every
    checkpoint of every method (selected ones from eval/, the rest from fisher/evals/)."""
    from fishertools import pearson
    from mixsd._report import claims, r4_claim, r4_points

    data = _r4_run(
        tmp_path,
        {"fb_mmlu": {"score": 0.5}, "fb_gsm8k": {"score": 0.3}},
        {
            "sft/checkpoint-1": (1.0, 4.0, _heldout(fb_mmlu=0.4, fb_gsm8k=0.3), False),
            "sft/checkpoint-2": (1.5, 3.0, _heldout(fb_mmlu=0.2, fb_gsm8k=0.1), True),
            "mixsd-a0.5/checkpoint-1": (0.6, 5.0, _heldout(fb_mmlu=0.5), False),  # GSM8K not run
            "mixsd-a0.5/checkpoint-2": (0.8, 2.0, _heldout(fb_mmlu=0.45, fb_gsm8k=0.3), True),
            "opsd/checkpoint-1": (2.0, 1.0, None, False),  # never evaluated: left out
        },
    )
    r4 = r4_points(data)
    assert r4["measure"] == "heldout_drop" and r4["why"] == ""
    drops = {p["name"]: p["forgetting"] for p in r4["points"]}
    assert drops == pytest.approx(
        {
            "sft/checkpoint-1": 0.05,
            "sft/checkpoint-2": 0.25,
            "mixsd-a0.5/checkpoint-1": 0.0,
            "mixsd-a0.5/checkpoint-2": 0.025,
        }
    )
    claim, measured, holds = r4_claim(data)
    r_rho = pearson([1.0, 1.5, 0.6, 0.8], [0.05, 0.25, 0.0, 0.025])
    r_raw = pearson([4.0, 3.0, 5.0, 2.0], [0.05, 0.25, 0.0, 0.025])
    assert measured.startswith("mean held-out drop 8.1 points; ")  # (5 + 25 + 0 + 2.5) / 4
    assert f"r(ρ) = {r_rho:.3f}, r(‖Δθ‖²) = {r_raw:.3f} over n = 4 checkpoints" in measured
    assert holds == ("yes" if r_rho >= 0.5 and r_rho > r_raw else "**no**")
    assert "not the paper's" not in measured
    assert claims({**data, "nll": {}, "targets": {}})[-1] == (claim, measured, holds)


def test_r4_without_heldout_signal_says_it_uses_delta_l_ref(tmp_path):
    from mixsd._report import r4_claim

    refloss = [{"refloss": {"delta_l_ref": v}} for v in (0.1, 0.3, 0.2)]
    data = _r4_run(
        tmp_path,
        {"fb_mmlu": {"score": 0.0}},  # the base model scores 0: no held-out signal
        {
            "sft/checkpoint-1": (1.0, 4.0, {**_heldout(fb_mmlu=0.0), **refloss[0]}, False),
            "sft/checkpoint-2": (2.0, 3.0, {**_heldout(fb_mmlu=0.0), **refloss[1]}, True),
            "mixsd-a0.3/checkpoint-1": (1.5, 5.0, {**_heldout(fb_mmlu=0.0), **refloss[2]}, True),
        },
    )
    _, measured, _ = r4_claim(data)
    assert measured.startswith(
        "forgetting measured as ΔL_ref, not the paper's held-out drop "
        "(no held-out task where the base model scores above chance by 2 standard errors); "
        "r(ρ) = 1.000"
    )
    assert "over n = 3 checkpoints" in measured


def test_r4_without_evaluations_falls_back_to_the_fisher_stage_delta_nll(tmp_path):
    from mixsd._report import r4_claim

    data = _r4_run(
        tmp_path,
        {},
        {"sft/checkpoint-1": (1.0, 4.0, None, False), "sft/checkpoint-2": (2.0, 3.0, None, False)},
    )
    _, measured, holds = r4_claim(data)
    assert measured.startswith(
        "forgetting measured as ΔNLL (reference set, mean per sample), not the paper's "
        "held-out drop (no held-out score)"
    )
    assert "n = 2" in measured and holds == "yes"  # r(ρ) = 1 > r(‖Δθ‖²) = -1


def _row(label: str, protocol: dict | None, decoding: dict, selection: dict | None = None) -> dict:
    return {"label": label, "protocol": protocol, "decoding": decoding, "selection": selection}


def test_report_names_the_heldout_protocol_that_ran():
    from mixsd._report import protocol_lines

    paper = {"protocol": "paper", "decoding": "sampled", "temperature": 1.0, "seed": 42}
    decoding = {"fb_aime24": {"samples": 16}, "fb_gsm8k": {"samples": 1}}
    rows = [_row("base", paper, decoding), _row("sft", paper, decoding)]
    assert protocol_lines(rows) == [
        "Held-out protocol: paper (sampled, T 1.0, seed 42; fb_aime24 16 samples).",
        "",
    ]
    greedy = {"protocol": "greedy", "decoding": "greedy", "temperature": 0.0, "seed": 0}
    lines = protocol_lines([_row("base", paper, decoding), _row("sft", greedy, {})])
    assert lines[:2] == [
        "- held-out protocol paper (sampled, T 1.0, seed 42; fb_aime24 16 samples): base",
        "- held-out protocol greedy (greedy): sft",
    ]
    # No held-out suite (or an eval file written before the protocol was recorded): no line.
    assert protocol_lines([_row("base", None, {})]) == []


def test_report_shows_the_learning_rate_sweep():
    from mixsd._report import sweep_lines

    sweep = {
        "selected_on": {"split": "kgfact/paraphrase", "n": 20},
        "rows": [
            {"learning_rate": 1e-5, "val_score": 0.25, "step": 40, "train_accuracy": 0.9},
            {"learning_rate": 3e-5, "val_score": 0.5, "step": 20, "train_accuracy": 1.0},
        ],
    }
    rows = [
        _row("sft", None, {}, {"learning_rate": 3e-5, "lr_sweep": sweep}),
        _row("base", None, {}),
    ]
    lines = sweep_lines(rows)
    assert "`kgfact/paraphrase` (n = 20" in lines[0]
    assert "| sft | 1e-05 | 25.0 | 40 | 90.0 |  |" in lines
    assert "| sft | 3e-05 | 50.0 | 20 | 100.0 | yes |" in lines
    assert sweep_lines([_row("sft", None, {}, {"learning_rate": 1e-5})]) == []


def test_r2_shows_each_delta_l_ref_with_its_standard_error():
    def row(method: str, label: str, refloss: float, se: float | None, acc: float) -> dict:
        selection = {"val_accuracy": acc}
        return {"method": method, "label": label, "refloss": refloss, "refloss_se": se,
                "selection": selection, "heldout": {}}  # fmt: skip

    rows = [row("sft", "sft", 0.02, 0.004, 0.9), row("mixsd", "mixsd-a0.5", 0.005, None, 0.85)]
    data = {"rows": rows, "nll": {}, "targets": {}, "fisher": None}
    r2 = next(c for c in claims(data) if c[0].startswith("R2"))
    assert r2[1] == "ΔL_ref 0.0050 vs SFT 0.0200 ± 0.0040; accuracy 85.0% vs 90.0%"
    assert r2[2] == "yes"


def test_r4_takes_the_measure_that_covers_every_checkpoint(tmp_path):
    """With fisher.checkpoint_suites: [refloss] only the selected checkpoints have a held-out
    score: ΔL_ref, which every checkpoint has, is the one measure (not a held-out drop on 2)."""
    from mixsd._report import r4_points

    def result(mmlu: float | None, dl: float) -> dict:
        return {
            **(_heldout(fb_mmlu=mmlu) if mmlu is not None else {}),
            "refloss": {"delta_l_ref": dl},
        }

    data = _r4_run(
        tmp_path,
        {"fb_mmlu": {"score": 0.6, "n": 400}},  # signal: far above chance
        {
            "sft/checkpoint-1": (1.0, 4.0, result(None, 0.1), False),
            "sft/checkpoint-2": (2.0, 3.0, result(0.5, 0.3), True),
            "mixsd-a0.3/checkpoint-1": (1.5, 5.0, result(None, 0.0), False),
            "mixsd-a0.3/checkpoint-2": (1.2, 5.0, result(0.6, 0.05), True),
        },
    )
    r4 = r4_points(data)
    assert r4["measure"] == "delta_l_ref" and len(r4["points"]) == 4
    assert r4["why"] == "the mean held-out drop covers 2 of 4"


def test_r2_reads_training_accuracy_from_the_evaluation_over_every_fact():
    """The training split's evaluation covers every trained fact; validation may cover fewer
    (train.eval_limit), so it is the fallback only."""

    def row(method: str, label: str, refloss: float, val: float, evaluated: float) -> dict:
        return {"method": method, "label": label, "refloss": refloss, "refloss_se": None,
                "selection": {"val_accuracy": val}, "heldout": {},
                "indomain": {"kgfact/train": evaluated}}  # fmt: skip

    rows = [row("sft", "sft", 0.02, 1.0, 1.0), row("mixsd", "mixsd-a0.3", 0.005, 1.0, 0.875)]
    data = {
        "rows": rows,
        "nll": {},
        "targets": {},
        "fisher": None,
        "run": {"split": "kgfact/train"},
    }
    r2 = next(c for c in claims(data) if c[0].startswith("R2"))
    assert r2[1].endswith("accuracy 87.5% vs 100.0%") and r2[2] == "**no**"


def _frontier_row(
    label, acc, dl, sums=None, options=None, method="mixsd", se=None, heldout=None
) -> dict:
    """A report row as the training frontier reads it (``heldout``: per-item scores of one
    held-out task)."""
    return {"label": label, "method": method, "refloss": dl, "refloss_se": se, "selection": None,
            "indomain": {"kgfact/train": acc}, "rollout_options": options or {},
            "refloss_sums": sums,
            "heldout_items": {"fb_humaneval": heldout} if heldout else {}}  # fmt: skip


def test_hull_delta_mixes_two_fixed_alphas():
    from mixsd._training_frontier import hull_delta_at

    fixed = [(0.5, 0.0), (1.0, 0.2)]  # alpha 0.5: half the facts, no forgetting; alpha 0: all
    assert hull_delta_at(0.75, fixed) == pytest.approx(0.1)  # halfway along the mix
    assert hull_delta_at(0.4, fixed) == pytest.approx(0.0)  # alpha 0.5 alone is accurate enough
    assert hull_delta_at(1.0, fixed) == pytest.approx(0.2)
    assert hull_delta_at(1.01, fixed) is None  # nothing that accurate


def test_training_frontier_judges_each_adaptive_method_against_the_fixed_alphas():
    from mixsd._training_frontier import frontier_lines

    row = _frontier_row
    rows = [
        row("sft", 1.0, 0.15, method="sft"),
        row("mixsd-a0.3", 1.0, 0.02),
        row("mixsd-a0.5", 0.75, -0.02),
        row("mixsd-a0.5-gate-tau0.2", 1.0, 0.0, options={"mixing": "gate", "tau": 0.2}),
        row("mixsd-a0.5-guard", 0.9, 0.03, options={"mixing": "guard"}),
    ]
    lines = frontier_lines(rows, "kgfact/train")
    gate = next(x for x in lines if x.startswith("| mixsd-a0.5-gate-tau0.2 |"))
    assert gate == (
        "| mixsd-a0.5-gate-tau0.2 | 100.0 | +0.0000 | yes | 1 | yes | +0.0200 | yes | – |"
    )  # no per-prompt sums: no paired difference
    guard = next(x for x in lines if x.startswith("| mixsd-a0.5-guard |"))
    # 90% is below 95% of SFT's; alpha 0.3 reaches it forgetting less; the mix of 0.3 and 0.5
    # at 90% forgets 0.02 * 0.6 - 0.02 * 0.4 = +0.004 < 0.03.
    assert guard == (
        "| mixsd-a0.5-guard | 90.0 | +0.0300 | **no** | 1 | **no** | +0.0040 | **no** | – |"
    )
    assert frontier_lines([r for r in rows if not r["rollout_options"]], "kgfact/train") == []


def test_training_frontier_pairs_the_reference_prompts():
    from forgetbench import delta_l_ref_se
    from mixsd._training_frontier import frontier_lines, paired_difference

    # Three reference responses of 10, 20 and 10 tokens; summed NLL per response.
    fixed = {"label": "mixsd-a0", "refloss_sums": [[5.0, 10], [9.0, 20], [6.0, 10]]}
    gate = {"label": "gate", "refloss_sums": [[4.0, 10], [8.5, 20], [5.0, 10]]}
    diff, se = paired_difference(gate, fixed)
    assert diff == pytest.approx((17.5 - 20.0) / 40)
    assert se == pytest.approx(delta_l_ref_se([(4.0, 10), (8.5, 20), (5.0, 10)],
                                              [(5.0, 10), (9.0, 20), (6.0, 10)]))  # fmt: skip
    assert se > 0
    assert paired_difference(gate, {"refloss_sums": [[5.0, 11], [9.0, 20], [6.0, 10]]}) is None
    assert paired_difference(gate, {"refloss_sums": None}) is None

    row = _frontier_row
    rows = [
        {"label": "sft", "method": "sft", "refloss": 0.1, "indomain": {"kgfact/train": 1.0}},
        row("mixsd-a0", 0.9, 0.01, fixed["refloss_sums"]),
        row("mixsd-a0.3", 0.7, -0.02, [[1.0, 10], [1.0, 20], [1.0, 10]]),
        row("gate", 0.95, -0.0625, gate["refloss_sums"], {"mixing": "gate"}),
    ]
    line = next(x for x in frontier_lines(rows, "kgfact/train") if x.startswith("| gate |"))
    # compared with the most accurate fixed alpha (0.9), not the one forgetting least
    assert line.endswith(f"| {diff:+.4f} ± {se:.4f} (mixsd-a0) |")


def test_training_frontier_pairs_every_fixed_alpha_as_accurate():
    from mixsd._training_frontier import frontier_lines

    row = _frontier_row
    rows = [
        {"label": "sft", "method": "sft", "refloss": 0.1, "indomain": {"kgfact/train": 1.0}},
        row("mixsd-a0", 1.0, 0.0, [[5.0, 10], [9.0, 20]]),
        row("mixsd-a0.3", 1.0, -0.01, [[4.8, 10], [8.9, 20]]),
        row("mixsd-a0.5", 0.5, -0.03, [[4.0, 10], [8.0, 20]]),
        row("gate", 1.0, -0.02, [[4.7, 10], [8.7, 20]], {"mixing": "gate"}),
    ]
    line = next(x for x in frontier_lines(rows, "kgfact/train") if x.startswith("| gate |"))
    versus = line.rsplit("|", 2)[1]
    # both fixed alphas as accurate are paired, the less accurate alpha 0.5 is not
    assert "(mixsd-a0)" in versus and "(mixsd-a0.3)" in versus and "mixsd-a0.5" not in versus
    assert versus.strip().startswith(f"{(13.4 - 14.0) / 30:+.4f} ± ")


def test_training_frontier_plot_is_drawn_only_with_an_adaptive_method(tmp_path):
    from mixsd._plots import training_frontier_plot

    def row(label, acc, dl, options=None, method="mixsd"):
        return _frontier_row(label, acc, dl, options=options, method=method, se=0.004)

    rows = [
        row("sft", 1.0, 0.15, method="sft"),
        row("mixsd-a0", 1.0, 0.0),
        row("mixsd-a0.5", 0.75, -0.02),
    ]
    assert training_frontier_plot(rows, "kgfact/train", tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
    rows.append(row("gate", 1.0, -0.01, {"mixing": "gate"}))
    first = training_frontier_plot(rows, "kgfact/train", tmp_path / "a.png")
    second = training_frontier_plot(rows, "kgfact/train", tmp_path / "b.png")
    assert first is not None and second is not None
    assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert first.read_bytes() == second.read_bytes()  # no timestamp: the same bytes


def test_training_frontier_pairs_the_held_out_problems(tmp_path):
    from mixsd._plots import training_frontier_plot
    from mixsd._training_frontier import (
        frontier_lines,
        heldout_mean,
        paired_heldout_difference,
    )

    def solved(*ids: int) -> dict[str, float]:  # four problems, the named ones passed
        return {f"HumanEval/{i}": float(i in ids) for i in range(4)}

    row = _frontier_row
    rows = [
        row("base", 0.0, 0.0, method="base", heldout=solved(0, 1, 2)),
        row("sft", 1.0, 0.15, method="sft", heldout=solved(0)),
        row("mixsd-a0", 1.0, 0.0, se=0.01, heldout=solved(0, 1)),
        row("gate", 1.0, -0.01, options={"mixing": "gate"}, se=0.01, heldout=solved(0, 1, 2)),
    ]
    mean, se = heldout_mean(rows[3])
    assert mean == pytest.approx(0.75) and se == pytest.approx((0.25 / 4) ** 0.5)
    diff, se = paired_heldout_difference(rows[3], rows[2])  # +1 on one problem of four
    assert diff == pytest.approx(0.25) and se == pytest.approx((0.25 / 4) ** 0.5)
    other = {"heldout_items": {"fb_humaneval": {"HumanEval/9": 1.0}}}
    assert paired_heldout_difference(rows[3], other) is None  # no problem in common

    lines = frontier_lines(rows, "kgfact/train")
    header = next(x for x in lines if x.startswith("| method |"))
    assert header.endswith("| held-out | held-out − fixed alpha's (paired) |")
    gate = next(x for x in lines if x.startswith("| gate |"))
    assert gate.endswith("| 75.0 ± 25.0 | +25.0 ± 25.0 (mixsd-a0) |")
    fixed = next(x for x in lines if x.startswith("| mixsd-a0 (fixed) |"))
    assert fixed.endswith("| 50.0 ± 28.9 | – |")
    # Without held-out items the table keeps its nine columns.
    plain = [{**r, "heldout_items": {}} for r in rows]
    header = next(x for x in frontier_lines(plain, "kgfact/train") if x.startswith("| method |"))
    assert header.count("|") == 10 and "held-out" not in header

    # The plot gains the held-out panel: a wider figure than without it.
    wide = training_frontier_plot(rows, "kgfact/train", tmp_path / "wide.png")
    narrow = training_frontier_plot(plain, "kgfact/train", tmp_path / "narrow.png")
    assert wide is not None and narrow is not None
    width = lambda png: int.from_bytes(png.read_bytes()[16:20], "big")  # noqa: E731 (IHDR)
    assert width(wide) > width(narrow)
    assert (
        wide.read_bytes()
        == training_frontier_plot(rows, "kgfact/train", tmp_path / "b.png").read_bytes()
    )
