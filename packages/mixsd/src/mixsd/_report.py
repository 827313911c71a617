"""``mixsd report RUN_DIR``: report.md and its plots from a ``mixsd run`` folder.

Everything is read from the run's files (run.json, eval/*.json, nll/*.json, train/*/selection.json,
fisher/compare.json, fisher/evals/*.json), so a report can be rewritten without running anything
again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forgetbench import heldout_item_scores
from mixsd._methods import method_label, rollout_label
from mixsd._run_config import RunError
from mixsd._stages.fisher import CHECKPOINT_EVALS
from mixsd._testability import (
    bootstrap_share_ratio,
    claim_scope,
    claim_scope_table,
    format_interval,
    heldout_signal,
)
from mixsd_base import read_json, write_text

__all__ = ["ReportConfig", "collect", "write_report"]

THRESHOLD_KEY = "8"  # the paper's high-NLL threshold, as mixsd nll names it
PAPER_ALPHA = 0.5  # claim R1 compares SFT's targets with the rollouts at this alpha, if run
INDOMAIN_NAMES = {
    "kgfact/train": "train",
    "kgfact/paraphrase": "paraphrase",
    "kgfact/twohop": "2-hop",
    "kgfact/retrieval": "retrieval",
    "kgfunc/test": "KGFunc test",
    "kgfunc/unseen": "KGFunc unseen",
    "edit/train": "edit",
    "edit/paraphrase": "edit para.",
    "edit/multihop": "multi-hop",
    "edit/locality": "locality",
    "edit/rewrite": "rewrite (completion)",
    "qa/train": "QA train",
    "qa/validation": "QA held-out (factuality)",
}
HELDOUT_NAMES = {
    "fb_aime24": "AIME24",
    "fb_aime24_paper": "AIME24",
    "fb_math500": "MATH500",
    "fb_gsm8k": "GSM8K",
    "fb_gsm8k100": "GSM8K-100",
    "fb_humaneval": "HumanEval",
    "fb_mmlu": "MMLU",
    "fb_mmlu_ll": "MMLU (log-lik.)",
}


def _read(path: Path, **checks: Any) -> Any:
    if not path.exists():
        raise RunError("not found (did the run finish that stage?)", path=path)
    return read_json(path, **checks)


def _targets(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{nll name: {kind, alpha}}`` of the run's target files, as run.json records them."""
    if "targets" in run:
        return run["targets"]
    # A run.json written before it carried targets: the same names, from the same functions.
    targets = {method_label("sft"): {"kind": "records", "alpha": None}}
    for method in run["methods"]:
        if method.get("alpha") is not None:
            targets[rollout_label(method["alpha"])] = {"kind": "rollout", "alpha": method["alpha"]}
    return {name: t for name, t in targets.items() if name in run["nll"]}


def _delta_l_ref(refloss: dict[str, Any]) -> float | None:
    """forgetbench's ΔL_ref (token mean); eval files written before its rename say "forgetting"."""
    return refloss.get("delta_l_ref", refloss.get("forgetting"))


def _delta_nll(by_measure: dict[str, Any]) -> Any:
    """fishertools' ΔNLL entry (sample mean); reports written before its rename say
    "measured_loss_increase"."""
    return by_measure.get("delta_nll", by_measure.get("measured_loss_increase"))


def _score(entry: Any) -> float | None:
    return entry.get("score") if isinstance(entry, dict) else None


def collect(run_dir: Path) -> dict[str, Any]:
    """One row per method: in-domain, held-out, retention, reference loss, training, taxonomy."""
    run = _read(
        run_dir / "run.json",
        required=("model", "data", "evals", "runs", "methods", "nll"),
        types={"evals": dict, "runs": dict, "methods": list, "nll": dict},
    )
    rows = []
    for label, path in run["evals"].items():
        result = _read(Path(path))
        retention = [v for v in (result.get("retention") or {}).values() if v is not None]
        selection = run["runs"].get(label)
        spec = next((m for m in run["methods"] if m["label"] == label), {"method": "base"})
        method = spec["method"]
        rows.append(
            {
                "label": label,
                "method": method,
                "alpha": spec.get("alpha"),
                "rollout_options": spec.get("rollout_options") or {},
                "indomain": {
                    k: _score(v)
                    for k, v in {
                        **(result.get("indomain") or {}),
                        **(result.get("edit") or {}),
                    }.items()
                },
                "heldout": {k: _score(v) for k, v in (result.get("heldout") or {}).items()},
                "heldout_n": {
                    k: v.get("n")
                    for k, v in (result.get("heldout") or {}).items()
                    if isinstance(v, dict)
                },
                "protocol": result.get("heldout_protocol"),
                "decoding": {
                    k: v.get("decoding")
                    for k, v in (result.get("heldout") or {}).items()
                    if isinstance(v, dict) and v.get("decoding")
                },
                "heldout_average": result.get("heldout_average"),
                # per item, for paired comparisons of two methods on the same problems
                "heldout_items": heldout_item_scores(Path(path), result),
                "retention": sum(retention) / len(retention)
                if retention
                else (100.0 if method == "base" else None),
                "refloss": _delta_l_ref(result.get("refloss") or {}),
                "refloss_se": (result.get("refloss") or {}).get("delta_l_ref_se"),
                "refloss_sums": (result.get("refloss") or {}).get("nll_sums"),
                "taxonomy": _taxonomy_totals(result.get("taxonomy") or {}),
                "selection": selection,
            }
        )
    nll_files = {name: _read(Path(p)) for name, p in run["nll"].items()}
    nll = {name: result["files"]["data"] for name, result in nll_files.items()}
    fisher = _read(Path(run["fisher"])) if run.get("fisher") else None
    return {
        "run": run,
        "rows": rows,
        "nll": nll,
        "nll_paired": _paired(nll_files),
        "targets": _targets(run),
        "fisher": fisher,
        "checkpoint_evals": _checkpoint_evals(run),
    }


def _checkpoint_evals(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{resolved model path: eval result}`` of every evaluated model: the base and each
    method's selected checkpoint (eval/), and the further checkpoints the Fisher stage evaluated
    (fisher/evals/), so R4 can pool every checkpoint that has a held-out score."""
    paths = []
    if run.get("fisher"):
        paths += sorted((Path(run["fisher"]).parent / CHECKPOINT_EVALS).glob("*.json"))
    paths += [Path(p) for p in run["evals"].values()]  # last: the run's own evaluations win
    out = {}
    for path in paths:
        result = _read(path)
        out[str(Path(result.get("model", path)).resolve())] = result
    return out


def _paired(nll_files: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{name: paired section}`` of the NLL files that have one (the stage scores each rollout
    file against the SFT records: data = this file, compare = SFT). Files written before the
    paired section, or with no id in common, have none: the report then shows the unpaired
    figures."""
    return {
        name: result["paired"]
        for name, result in nll_files.items()
        if (result.get("paired") or {}).get("n")
    }


def _taxonomy_totals(per_task: dict[str, dict[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for counts in per_task.values():
        for bucket, count in counts.items():
            totals[bucket] = totals.get(bucket, 0) + count
    return totals


def _fmt(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "–" if value is None else f"{value * scale:.{digits}f}"


def _columns(rows: list[dict], key: str) -> list[str]:
    seen: list[str] = []
    for row in rows:
        for name, value in row[key].items():
            if value is not None and name not in seen:
                seen.append(name)
    return seen


def results_table(rows: list[dict]) -> str:
    """The paper's table shape: in-domain | held-out | average | retention | ΔL_ref."""
    indomain, heldout = _columns(rows, "indomain"), _columns(rows, "heldout")
    head = (
        ["method"]
        + [INDOMAIN_NAMES.get(c, c) for c in indomain]
        + [HELDOUT_NAMES.get(c, c) for c in heldout]
        + ["held-out avg", "retention %", "ΔL_ref"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["label"]]
        cells += [_fmt(row["indomain"].get(c), 100) for c in indomain]
        cells += [_fmt(row["heldout"].get(c), 100) for c in heldout]
        cells += [
            _fmt(row["heldout_average"], 100),
            _fmt(row["retention"]),
            _fmt(row["refloss"], digits=3)
            + ("" if row.get("refloss_se") is None else f" ± {row['refloss_se']:.3f}"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _records_name(targets: dict[str, dict[str, Any]]) -> str | None:
    """The name of the canonical targets (what SFT trains on) among the NLL files."""
    return next((name for name, t in targets.items() if t["kind"] == "records"), None)


def _paired_ratio(paired: dict[str, Any] | None) -> float | None:
    """SFT's share of tokens with NLL > 8 ÷ MixSD's, on the same examples (None without one)."""
    if not paired:
        return None
    return (paired.get("compare_over_data") or {}).get(THRESHOLD_KEY)


def nll_table(
    nll: dict[str, dict],
    targets: dict[str, dict[str, Any]],
    paired: dict[str, dict[str, Any]] | None = None,
) -> tuple[str, dict[str, float]]:
    """Each file's own figures; the ratio is the paired one (same examples) where the file has
    it, else the two files' shares as scored. With paired figures, a second table in the shape
    of the paper's Tables 7-8 (count and share above NLL 5 and 8, SFT | this) and Appendix E.2
    (SFT's high-NLL token types found in this target, mean per example)."""
    paired = paired or {}
    lines = [
        "| targets | records | tokens | mean NLL | share NLL > 8 | SFT ÷ this |",
        "|---|---|---|---|---|---|",
    ]
    records = _records_name(targets)
    sft = nll.get(records or "", {}).get("share_above", {}).get(THRESHOLD_KEY)
    ratios = {}
    for name, summary in nll.items():
        share = summary["share_above"].get(THRESHOLD_KEY)
        ratio = _paired_ratio(paired.get(name))
        if ratio is None:
            ratio = sft / share if sft is not None and share else None
        if ratio is not None and name != records:
            ratios[name] = ratio
        how = f" (paired, n = {paired[name]['n']})" if _paired_ratio(paired.get(name)) else ""
        lines.append(
            f"| {name} | {summary['records']} | {summary['tokens']} | {summary['mean_nll']:.3f} | "
            f"{_fmt(share, 100, 2)}% | {_fmt(ratio, digits=2)}{'×' if ratio else ''}{how} |"
        )
    if paired:
        lines += ["", paired_nll_table(paired)]
    return "\n".join(lines), ratios


def _count_share(side: dict[str, Any], key: str) -> str:
    count = side["tokens_above"].get(key)
    share = side["share_above"].get(key)
    return "–" if count is None else f"{count} ({_fmt(share, 100)}%)"


def paired_nll_table(paired: dict[str, dict[str, Any]]) -> str:
    """The paper's Tables 7-8 and Appendix E.2 on the examples both files hold."""
    lines = [
        "| targets (paired with SFT) | n | tokens SFT / this | NLL > 5 SFT / this | "
        "NLL > 8 SFT / this | SFT ÷ this (> 8) | SFT's > 8 types in this |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, p in paired.items():
        sft, mine = p["compare"], p["data"]
        cells = [name, str(p["n"]), f"{sft['tokens']} / {mine['tokens']}"]
        cells += [f"{_count_share(sft, k)} / {_count_share(mine, k)}" for k in ("5", "8")]
        ratio = _paired_ratio(p)
        kept = (p.get("overlap") or {}).get(THRESHOLD_KEY) or {}
        cells += [
            f"{_fmt(ratio, digits=2)}{'×' if ratio else ''}",
            f"{_fmt(kept.get('compare_high_in_data'), 100)}% "
            f"(of {kept.get('compare_high_examples', 0)})",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fisher_table(fisher: dict[str, Any]) -> str:
    lines = [
        "| checkpoint | ‖Δθ‖² | Σ F·Δθ² | ρ | ΔNLL (reference set, mean per sample) |",
        "|---|---|---|---|---|",
    ]
    for row in fisher["checkpoints"]:
        totals, measured = row["totals"], _delta_nll(row["forgetting"])
        lines.append(
            f"| {row['name']} | {totals['raw_sq']:.4g} | {totals['fisher_weighted']:.4g} | "
            f"{_fmt(totals['rho'], digits=3)} | {_fmt(measured, digits=4)} |"
        )
    corr = _delta_nll(fisher["correlations"]) or {}
    lines.append("")
    for metric, name in (("rho", "ρ"), ("raw_sq", "‖Δθ‖²"), ("fisher_weighted", "Σ F·Δθ²")):
        stats = corr.get(metric)
        if stats:
            lines.append(
                f"- Pearson r({name}, ΔNLL) = {_fmt(stats['pearson'], digits=3)}, "
                f"Spearman = {_fmt(stats['spearman'], digits=3)} (n = {stats['n']})"
            )
    return "\n".join(lines)


def taxonomy_table(rows: list[dict]) -> str:
    buckets = sorted({b for row in rows for b in row["taxonomy"]})
    if not buckets:
        return "(no held-out task with an error taxonomy was evaluated)"
    lines = ["| method | " + " | ".join(buckets) + " |", "|" + "---|" * (len(buckets) + 1)]
    for row in rows:
        counts = [str(row["taxonomy"].get(b, 0)) for b in buckets]
        lines.append(f"| {row['label']} | " + " | ".join(counts) + " |")
    return "\n".join(lines)


def training_table(rows: list[dict]) -> str:
    lines = [
        "| method | selected step | rule | training accuracy | curve (step: acc) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        sel = row["selection"]
        if not sel:
            continue
        curve = ", ".join(f"{c['step']}: {c['val_accuracy']:.2f}" for c in sel["curve"])
        accuracy = sel.get("val_accuracy")
        lines.append(
            f"| {row['label']} | {sel['step']} | {sel['rule']} | "
            f"{'not validated' if accuracy is None else f'{accuracy:.2f}'} | {curve or '–'} |"
        )
    return "\n".join(lines)


def protocol_line(row: dict[str, Any]) -> str | None:
    """How one evaluation decoded the held-out tasks, e.g. "paper (sampled, T 1.0, seed 42;
    fb_aime24 16 samples)"; None when no held-out suite ran or the file predates the record."""
    protocol = row.get("protocol")
    if not protocol:
        return None
    text = f"{protocol['protocol']} ({protocol['decoding']}"
    if protocol["decoding"] == "sampled":
        text += f", T {protocol['temperature']}, seed {protocol['seed']}"
    several = [
        f"{task} {d['samples']} samples"
        for task, d in row["decoding"].items()
        if d.get("samples", 1) > 1
    ]
    return text + ("; " + ", ".join(several) if several else "") + ")"


def protocol_lines(rows: list[dict]) -> list[str]:
    """One line per held-out protocol that ran (naming the methods when several differ)."""
    seen: dict[str, list[str]] = {}
    for row in rows:
        line = protocol_line(row)
        if line is not None:
            seen.setdefault(line, []).append(row["label"])
    if len(seen) <= 1:
        return [f"Held-out protocol: {line}." for line in seen] + [""] * len(seen)
    return [f"- held-out protocol {line}: {', '.join(labels)}" for line, labels in seen.items()] + [
        ""
    ]


def sweep_lines(rows: list[dict]) -> list[str]:
    """The learning-rate sweep (``train.lr_grid``): each rate's selected checkpoint with its
    validation score; nothing when no method was swept."""
    swept = [row for row in rows if (row["selection"] or {}).get("lr_sweep")]
    if not swept:
        return []
    on = swept[0]["selection"]["lr_sweep"]["selected_on"]
    lines = [
        f"Learning-rate sweep: each rate's selected checkpoint scored on `{on['split']}` "
        f"(n = {on['n']}, greedy); the best rate is kept.",
        "",
        "| method | learning rate | validation score | selected step | training accuracy | chosen |",
        "|---|---|---|---|---|---|",
    ]
    for row in swept:
        chosen = row["selection"].get("learning_rate")
        for r in row["selection"]["lr_sweep"]["rows"]:
            lines.append(
                f"| {row['label']} | {r['learning_rate']:g} | {_fmt(r['val_score'], 100)} | "
                f"{r['step']} | {_fmt(r['train_accuracy'], 100)} | "
                f"{'yes' if r['learning_rate'] == chosen else ''} |"
            )
    return [*lines, ""]


def _se(row: dict[str, Any]) -> str:
    """ΔL_ref's standard error over the reference prompts, where the eval file records it."""
    se = row.get("refloss_se")
    return "" if se is None else f" ± {se:.4f}"


def _holds(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def r1_file(data: dict[str, Any]) -> str | None:
    """The rollout file R1 compares with SFT's targets: the paper's (its alpha, the blind mask,
    no method's own rollout options) if run, else the first."""
    targets = data["targets"]
    rollouts = [n for n, t in targets.items() if t["kind"] == "rollout" and n in data["nll"]]
    paper = [
        n for n in rollouts if targets[n]["alpha"] == PAPER_ALPHA and not targets[n].get("options")
    ]
    return (paper or rollouts or [None])[0]


def training_accuracy(row: dict[str, Any], split: str | None) -> float | None:
    """Training accuracy over every trained fact: the evaluation of the training ``split``
    (run.json's), else (a run.json without its split) the selected checkpoint's validation
    accuracy, which covers the first train.eval_limit facts only."""
    evaluated = row.get("indomain", {}).get(split) if split else None
    if evaluated is not None:
        return float(evaluated)
    selection = row.get("selection") or {}
    value = selection.get("val_accuracy")
    return None if value is None else float(value)


def claims(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The paper's four claims (R1-R4 of the pipeline issue), measured on this run:
    (claim, what was measured, holds?)."""
    by_method = {r["method"]: r for r in reversed(data["rows"])}  # the first row of each
    mixsd = [r for r in data["rows"] if r["method"] == "mixsd"]
    sft = by_method.get("sft")
    out = []

    share = {k: v["share_above"].get(THRESHOLD_KEY) for k, v in data["nll"].items()}
    records = _records_name(data["targets"]) or ""
    ref = r1_file(data)
    sft_share = share.get(records)
    ref_share = share.get(ref) if ref else None
    paired = data.get("nll_paired", {}).get(ref) if ref else None
    how = ""
    if paired is not None and _paired_ratio(paired) is not None:
        # The same examples on both sides (the paper's measure), not every fact vs the kept ones.
        sft_share = paired["compare"]["share_above"][THRESHOLD_KEY]
        ref_share = paired["data"]["share_above"][THRESHOLD_KEY]
        how = f"paired, n = {paired['n']}: "
    ratio = sft_share / ref_share if sft_share and ref_share else None
    out.append(
        (
            f"R1: share of target tokens with NLL > 8, SFT ÷ {ref or 'MixSD'} ≥ 4×",
            "–"
            if ratio is None or sft_share is None or ref_share is None
            else f"{how}{sft_share * 100:.2f}% ÷ {ref_share * 100:.2f}% = {ratio:.2f}×"
            + format_interval(
                bootstrap_share_ratio((paired or {}).get("per_example") or [], THRESHOLD_KEY)
            ),
            _holds(None if ratio is None else ratio >= 4),
        )
    )

    split = (data.get("run") or {}).get("split")

    for row in mixsd:
        if sft is None or row["refloss"] is None or sft["refloss"] is None:
            continue
        acc, sft_acc = training_accuracy(row, split), training_accuracy(sft, split)
        ok = row["refloss"] <= 0.5 * sft["refloss"] and (
            acc is not None and sft_acc is not None and acc >= 0.9 * sft_acc
        )
        out.append(
            (
                f"R2 ({row['label']}): ΔL_ref ≤ 0.5 × SFT's, training accuracy ≥ 0.9 × SFT's",
                f"ΔL_ref {row['refloss']:.4f}{_se(row)} vs SFT {sft['refloss']:.4f}{_se(sft)}; "
                f"accuracy {_fmt(acc, 100)}% vs {_fmt(sft_acc, 100)}%",
                _holds(ok),
            )
        )

    base = by_method.get("base")
    signal = heldout_signal(base)
    for row in mixsd:
        if sft is None or not signal:
            continue
        pairs = [(t, row["heldout"].get(t), sft["heldout"].get(t)) for t in signal]
        ok = all(m is not None and s is not None and m >= s for _, m, s in pairs)
        shown = "; ".join(
            f"{HELDOUT_NAMES.get(t, t)} {_fmt(m, 100)} vs {_fmt(s_, 100)}" for t, m, s_ in pairs
        )
        out.append(
            (f"R3 ({row['label']}): held-out ≥ SFT on every task with signal", shown, _holds(ok))
        )

    if base is not None and not signal:
        out.append(
            (
                "R3: held-out ≥ SFT on every task with signal",
                "no held-out task where the base model scores above chance by 2 standard errors",
                _holds(None),
            )
        )

    if data["fisher"] is not None:
        out.append(r4_claim(data))
    return out


R4_FALLBACK = "forgetting measured as {name}, not the paper's held-out drop"


def heldout_drop(base: dict[str, float | None], scores: dict[str, float | None]) -> float | None:
    """The paper's forgetting of one checkpoint (Table 6): base score minus its score, averaged
    over the held-out benchmarks both ran (fractions, as eval files hold them)."""
    pairs = [(b, scores.get(t)) for t, b in base.items()]
    drops = [b - s for b, s in pairs if b is not None and s is not None]
    return sum(drops) / len(drops) if drops else None


def r4_points(data: dict[str, Any]) -> dict[str, Any]:
    """R4's points, pooled over every checkpoint the Fisher stage compared (every method's, not
    one per method): ``{"measure", "name", "why", "points": [{name, rho, raw_sq, forgetting}]}``.

    The measure is the mean held-out drop over the tasks with signal (the base model above
    chance by 2 standard errors, :func:`heldout_signal`) where there is one; otherwise the
    reference loss ΔL_ref (token mean) from the same eval files; for a run without those, the
    Fisher stage's own ΔNLL on the reference set. Of the two evaluated measures, the first that
    covers the most checkpoints (``fisher.checkpoint_suites: [refloss]`` gives ΔL_ref on every
    one). A
    checkpoint without the measure is left out, so ``len(points)`` is the pooled n.
    """
    evals = data.get("checkpoint_evals") or {}
    base = next((r for r in data["rows"] if r["method"] == "base"), None)
    signal = {t: base["heldout"][t] for t in heldout_signal(base)} if base else {}
    compared = data["fisher"]["checkpoints"]

    def eval_of(row: dict[str, Any]) -> dict[str, Any]:
        return evals.get(str(Path(row["path"]).resolve())) or {}

    def heldout(row: dict[str, Any]) -> float | None:
        scores = {k: _score(v) for k, v in (eval_of(row).get("heldout") or {}).items()}
        return heldout_drop(signal, scores)

    def delta_l_ref(row: dict[str, Any]) -> float | None:
        return _delta_l_ref(eval_of(row).get("refloss") or {})

    def delta_nll(row: dict[str, Any]) -> float | None:
        return _delta_nll(row.get("forgetting") or {})

    choices = [
        ("heldout_drop", "the mean held-out drop", heldout),
        ("delta_l_ref", "ΔL_ref", delta_l_ref),
        ("delta_nll", "ΔNLL (reference set, mean per sample)", delta_nll),
    ]
    if not signal:
        choices = choices[1:]
    why = ""
    if not signal:
        ran = base is not None and any(v is not None for v in base["heldout"].values())
        why = (
            "no held-out task where the base model scores above chance by 2 standard errors"
            if ran
            else "no held-out score"
        )
    best: dict[str, Any] = {"measure": None, "name": "nothing", "why": why, "points": []}
    for measure, name, value in choices:
        points = [
            {
                "name": row["name"],
                "rho": row["totals"]["rho"],
                "raw_sq": row["totals"]["raw_sq"],
                "forgetting": value(row),
            }
            for row in compared
        ]
        points = [p for p in points if p["forgetting"] is not None]
        if measure == "delta_nll" and best["points"]:
            break  # the Fisher stage's own measure only where no evaluation has one
        # One measure for every point: the first evaluated one that covers the most
        # checkpoints (a held-out drop on the selected ones alone loses to ΔL_ref on all).
        if len(points) > len(best["points"]):
            if best["measure"] is not None:
                why = why or f"{best['name']} covers {len(best['points'])} of {len(compared)}"
            best = {"measure": measure, "name": name, "why": why, "points": points}
        elif not points:
            why = why or f"no compared checkpoint has {name}"
    if best["measure"] is None:
        best["why"] = why
    return best


def r4_claim(data: dict[str, Any]) -> tuple[str, str, str]:
    """R4 as the paper's Table 6 measures it: Pearson r of the alignment ρ and of ‖Δθ‖² with
    forgetting, over the pooled checkpoints; the row names a measure other than the paper's."""
    from fishertools import pearson

    r4 = r4_points(data)
    points = [p for p in r4["points"] if p["rho"] is not None]
    forgetting = [p["forgetting"] for p in points]
    r_rho = pearson([p["rho"] for p in points], forgetting)
    r_raw = pearson([p["raw_sq"] for p in points], forgetting)
    ok = None if r_rho is None or r_raw is None else (r_rho >= 0.5 and r_rho > r_raw)
    if r4["measure"] == "heldout_drop":
        mean = sum(forgetting) / len(forgetting) if forgetting else None
        how = f"mean held-out drop {_fmt(mean, 100)} points"
    else:
        how = R4_FALLBACK.format(name=r4["name"]) + (f" ({r4['why']})" if r4["why"] else "")
    return (
        "R4: Pearson r(ρ, forgetting) ≥ 0.5 and > r(‖Δθ‖², forgetting), every checkpoint pooled",
        f"{how}; r(ρ) = {_fmt(r_rho, digits=3)}, r(‖Δθ‖²) = {_fmt(r_raw, digits=3)} "
        f"over n = {len(points)} checkpoints of this run's cohort (the paper pools three cohorts)",
        _holds(ok),
    )


def claims_table(data: dict[str, Any]) -> str:
    lines = ["| claim | measured | holds |", "|---|---|---|"]
    lines += [f"| {c} | {m} | {h} |" for c, m, h in claims(data)]
    return "\n".join(lines)


@dataclass
class ReportConfig:
    """Options of ``mixsd report`` (``--config FILE``, ``--set key=value`` or the flags)."""

    plots: bool = field(
        default=True, metadata={"help": "Draw the PNG plots (plots/) and link them in the report."}
    )


def _image(alt: str, path: Path | None, run_dir: Path) -> list[str]:
    return [] if path is None else [f"![{alt}]({os.path.relpath(path, run_dir)})", ""]


def write_report(run_dir: str | Path, config: ReportConfig | None = None) -> Path:
    """Write RUN_DIR/report.md and RUN_DIR/plots/*.png; returns the report's path."""
    config = config or ReportConfig()
    run_dir = Path(run_dir).absolute()
    data = collect(run_dir)
    rows, run = data["rows"], data["run"]
    images: dict[str, Path | None] = dict.fromkeys(("pareto", "nll", "taxonomy", "frontier"))
    if config.plots:
        from mixsd._plots import (
            pareto_plot,
            plot_nll_cdf,
            plot_taxonomy,
            training_frontier_plot,
        )

        plots = run_dir / "plots"
        plots.mkdir(parents=True, exist_ok=True)
        images = {
            "pareto": pareto_plot(rows, run.get("split"), plots / "pareto.png"),
            "nll": plot_nll_cdf(data["nll"], plots / "nll_cdf.png"),
            "taxonomy": plot_taxonomy(rows, plots / "taxonomy.png"),
            "frontier": training_frontier_plot(
                rows, run.get("split"), plots / "training_frontier.png"
            ),
        }
    nll_md, ratios = nll_table(data["nll"], data["targets"], data["nll_paired"])
    r4 = r4_points(data) if data["fisher"] is not None else None
    scope = claim_scope(
        data, r4, threshold=THRESHOLD_KEY, names=HELDOUT_NAMES, r1_file=r1_file(data)
    )
    parts = [
        "# MixSD run report",
        "",
        # The paper's Figure 2 first: where each method lands, memorisation against retention.
        *_image("memorisation vs retention", images["pareto"], run_dir),
        f"Model `{run['model']}`, training records `{run['data']}`, run folder `{run_dir.name}`.",
        "Scores are accuracies in %; retention is the held-out score over the base model's (%),",
        "averaged over tasks; ΔL_ref is the increase of the reference loss (nats / token), ± its",
        "standard error over the reference prompts where recorded.",
        "ΔNLL (Fisher section) is the increase of the Fisher's per-sample loss (summed response",
        "NLL, averaged over samples) on the Fisher data (fisher/reference.jsonl): another measure",
        "than ΔL_ref's token mean, so the two differ in size and may differ in sign. R4's forgetting",
        "is the paper's mean held-out drop unless its row names another measure.",
        "",
        "## What this run can test",
        "",
        "A claim this budget cannot test is not evidence against the paper; the claims table",
        "below is read against this one.",
        "",
        claim_scope_table(scope),
        "",
        "## Results",
        "",
        results_table(rows),
        "",
        *protocol_lines(rows),
        "## The paper's claims on this run",
        "",
        claims_table(data),
        "",
        "## Training",
        "",
        training_table(rows),
        "",
        *sweep_lines(rows),
        "## Targets under the base model",
        "",
        nll_md,
        "",
    ]
    parts += [
        f"- SFT ÷ {k}: {v:.2f}× the share of tokens above NLL 8"
        + (
            f" (paired, n = {data['nll_paired'][k]['n']})"
            if _paired_ratio(data["nll_paired"].get(k)) is not None
            else ""
        )
        for k, v in ratios.items()
    ]
    parts += ["", *_image("NLL CDF", images["nll"], run_dir)]
    parts += ["## Error taxonomy (held-out failures)", "", taxonomy_table(rows), ""]
    parts += _image("taxonomy", images["taxonomy"], run_dir)
    if data["fisher"] is not None:
        compared = len(data["fisher"].get("checkpoints") or [])
        parts += [
            f"## Fisher diagnostics ({compared} checkpoints compared)",
            "",
            fisher_table(data["fisher"]),
        ]
        picture = data["fisher"].get("plot")
        if config.plots and picture and Path(picture).is_file():
            parts += ["", f"![Fisher]({os.path.relpath(picture, run_dir)})"]
        parts.append("")
    if run.get("frontier"):  # the target frontier (no training), then the training frontier
        from mixsd._frontier import report_lines as target_frontier_lines

        parts += target_frontier_lines(Path(run["frontier"]), run_dir)
    from mixsd._training_frontier import frontier_lines

    parts += frontier_lines(
        rows, run.get("split"), _image("training frontier", images["frontier"], run_dir)
    )
    from mixsd._qa import report_lines  # which verifier scored each split; the QA filter

    parts += report_lines(run)
    return write_text(run_dir / "report.md", "\n".join(parts))
