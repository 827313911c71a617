"""``mixsd frontier``: the target frontier of the mixing policies, no training.

Every setting (fixed alpha, each adaptive policy at each value of its knob, repair) decodes the
same examples with the same seed through ``mixsd_core.run_rollout`` (traced, so each record says
whose token it took where the streams disagreed), with ``attempts`` tries per example. Per
setting the table gives:

* verified yield within 1, 3 and ``attempts`` attempts (budgets up to ``attempts`` only): kept
  targets whose attempt index is below k, over all examples (a kept target's attempt sequence
  does not depend on the budget);
* decoder passes per kept target (every decode of every example, failed and repaired included);
* the effective naive share: naive tokens taken over disagreement positions;
* the base model's NLL of the targets (``mixsd_core.score_targets``): mean per token and share
  of tokens above 8 nats, over the setting's own kept targets, **paired** (the examples every
  setting kept) and **filled** (every example, a failed one counted with its SFT target, so a
  setting cannot look good by dropping hard facts).

A *cascade* (``cascades``) is a retry schedule across settings: each stage decodes once, and
the examples whose target fails go on to the next stage; its attempt k is stage k's decode. Its
stages' files are ``rollouts/<cascade>/stage-<k>.jsonl`` (each on its own data file of the
examples still pending), merged into ``rollouts/<cascade>.jsonl``.

Outputs in ``out``: ``rollouts/<setting>.jsonl`` (+ manifests; a rerun reuses finished ones),
``frontier.json``, ``frontier.md`` and ``frontier.png``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mixsd._sections import RolloutSection, section_class, stage_config
from mixsd_base import (
    ConfigError,
    check_fields,
    check_output,
    config_command,
    option,
    read_json,
    read_jsonl,
    write_json,
    write_jsonl,
    write_text,
)
from mixsd_core import (
    DEFAULT_NLL_THRESHOLD,
    MIXING_KNOBS,
    MIXINGS,
    MODEL_HELP,
    Mixing,
    RolloutConfig,
    mixing_shares,
)

__all__ = [
    "FrontierConfig",
    "FrontierSection",
    "frontier_command",
    "frontier_settings",
    "run_frontier",
]

_KEY = f"{DEFAULT_NLL_THRESHOLD:g}"
_RowValue = Callable[[dict[str, Any]], float | None]  # a plotted number of a table row


@dataclass
class FrontierConfig:
    """Settings of ``mixsd frontier``."""

    model: str = option("default", MODEL_HELP, pipeline=True)
    data: str = option(
        "", "JSONL of records (id, prompt, target, answer).", required=True, pipeline=True
    )
    out: str = option(
        "", "Output folder (rollouts/, frontier.json/.md/.png).", required=True, pipeline=True
    )
    seed: int = option(0, "Seed of every setting's masks: the same draws for all.")
    alphas: list[float] = field(
        default_factory=lambda: [round(0.1 * k, 1) for k in range(8)],
        metadata={"help": "Fixed alphas (bernoulli), the paper's points."},
    )
    policy_alpha: float = option(
        0.5, "Mask alpha of the gate and repair settings.", interval="[0, 1]"
    )
    taus: list[float] = field(
        default_factory=lambda: [0.05, 0.2, 0.5], metadata={"help": "gate's tau values."}
    )
    kappas: list[float] = field(
        default_factory=lambda: [0.5, 1.0, 2.0], metadata={"help": "exchange's kappa values."}
    )
    deltas: list[float] = field(
        default_factory=lambda: [1.0, 2.0, 4.0], metadata={"help": "guard's delta values."}
    )
    repairs: list[int] = field(
        default_factory=lambda: [2],
        metadata={"help": "Repair flips: one bernoulli setting at policy_alpha per value."},
    )
    settings: list[dict[str, Any]] = field(
        default_factory=list,
        metadata={
            "help": "More settings, each a mapping of mixing, alpha (default policy_alpha), "
            "the policy's knob (tau, kappa or delta), answer_guard and repair, e.g. {mixing: "
            "gate, alpha: 0.8, tau: 0.2, answer_guard: true, repair: 2}: combinations the "
            "lists above do not make."
        },
    )
    cascades: list[list[dict[str, Any]]] = field(
        default_factory=list,
        metadata={
            "help": "Retry schedules across settings, each a list of 2 to `attempts` settings "
            "(mappings as in `settings`, without repair) tried in turn, one attempt each: an "
            "example whose target fails goes on to the next, e.g. [[{alpha: 1.0, answer_guard: "
            "true}, {mixing: exchange, kappa: 2, answer_guard: true}]]."
        },
    )
    attempts: int = option(10, "Attempts per example (max_retries + 1).", min=1)
    nll: bool = option(True, "Score the targets' NLL under the base model.")
    rollout: RolloutSection = field(
        default_factory=RolloutSection,
        metadata={
            "help": "Other rollout options (max_new_tokens, verifier, prompt_style, limit, ...); "
            "alpha, seed, max_retries and the mixing fields are set per setting."
        },
    )

    def __post_init__(self) -> None:
        check_fields(self)
        for name in ("alphas", "taus"):
            if any(not 0 <= v <= 1 for v in getattr(self, name)):
                raise ConfigError("values must be in [0, 1]", field=name)
        if any(k < 1 for k in self.repairs):
            raise ConfigError("values must be >= 1", field="repairs")
        settings = frontier_settings(self)
        if not settings and not self.cascades:
            raise ConfigError("no setting to decode: give alphas, a policy's values, settings "
                              "or cascades", field="alphas")  # fmt: skip
        stems = [s.stem for s in settings]
        twice = sorted({s for s in stems if stems.count(s) > 1})
        if twice:
            raise ConfigError(f"settings {twice} are listed twice", field="settings")
        builtin = len(settings) - len(self.settings)
        for i, setting in enumerate(settings):  # every setting's rollout config, at load
            try:
                _rollout_config(self, setting)
            except ConfigError as exc:
                if exc.path is not None or not exc.field:
                    raise
                if exc.field not in SETTING_KEYS:
                    where = f"rollout.{exc.field}"
                elif i >= builtin:
                    where = f"settings.{i - builtin}.{exc.field}"
                else:  # a value of one of the lists
                    where = {"alpha": "alphas", "repair": "repairs"}.get(exc.field, f"{exc.field}s")
                raise ConfigError(exc.message, field=where) from None
        for i, cascade in enumerate(frontier_cascades(self)):  # checked at load, as above
            for k, stage in enumerate(cascade.stages):
                try:
                    _rollout_config(self, stage)
                except ConfigError as exc:
                    if exc.path is not None or exc.field not in SETTING_KEYS:
                        raise
                    raise ConfigError(exc.message, field=f"cascades.{i}.{k}.{exc.field}") from None


if TYPE_CHECKING:  # to a type checker the section reads as the config it is built from

    class FrontierSection(FrontierConfig): ...

else:
    FrontierSection = section_class(
        "FrontierSection",
        "``frontier:``: FrontierConfig options (mixsd frontier on the run's training records, "
        "from its base model, with its seed and its rollout section); null skips it.",
        (FrontierConfig,),
        run_sets=("seed", "rollout"),
    )


@dataclass(frozen=True)
class Setting:
    """One point of the frontier: a label, a file stem and its RolloutConfig values."""

    label: str
    stem: str
    values: dict[str, Any]  # mixing, alpha and the knob (or repair)


SETTING_KEYS = ("mixing", "alpha", *MIXING_KNOBS.values(), "answer_guard", "repair")


def make_setting(values: dict[str, Any]) -> Setting:
    """The setting of mixing ``values`` (mixing, alpha, its knob, answer_guard, repair), named
    by one rule: ``alpha 0.5``, ``gate tau 0.2 (alpha 0.5)``, ``guard delta 2``, ``repair 2
    (alpha 0.5)``, ``gate tau 0.2 (alpha 0.8) + answer guard + repair 2``."""
    mixing, alpha, repair = values["mixing"], values["alpha"], values.get("repair", 0)
    guarded = values.get("answer_guard", False)
    if mixing == "bernoulli" and repair and not guarded:  # the repairs list's own settings
        return Setting(
            f"repair {repair} (alpha {alpha:g})", f"repair{repair}-a{alpha:g}", dict(values)
        )
    if mixing == "bernoulli":
        label, stem = f"alpha {alpha:g}", f"alpha-{alpha:g}"
    else:
        knob = MIXING_KNOBS[mixing]
        label, stem = f"{mixing} {knob} {values[knob]:g}", f"{mixing}-{knob}{values[knob]:g}"
        if Mixing(mixing).uses_mask:  # exchange and guard ignore it: their alpha is not named
            label, stem = f"{label} (alpha {alpha:g})", f"{stem}-a{alpha:g}"
    if guarded:
        label, stem = f"{label} + answer guard", f"{stem}-answerguard"
    if repair:
        label, stem = f"{label} + repair {repair}", f"{stem}-repair{repair}"
    return Setting(label, stem, dict(values))


def _custom_setting(values: Any, policy_alpha: float, where: str) -> Setting:
    if not isinstance(values, dict):
        raise ConfigError(f"give a mapping of {list(SETTING_KEYS)}, got {values!r}", field=where)
    unknown = sorted(set(values) - set(SETTING_KEYS))
    if unknown:
        raise ConfigError(f"unknown keys {unknown}; use {list(SETTING_KEYS)}", field=where)
    mixing = values.get("mixing", "bernoulli")
    if mixing not in MIXINGS:
        raise ConfigError(f"mixing {mixing!r} is not one of {list(MIXINGS)}", field=where)
    knob = MIXING_KNOBS.get(mixing)
    if knob is not None and values.get(knob) is None:
        raise ConfigError(f"mixing {mixing!r} needs its {knob}", field=where)
    return make_setting({"mixing": mixing, "alpha": policy_alpha, **values})


def frontier_settings(config: FrontierConfig) -> list[Setting]:
    """Fixed alphas first, then gate, exchange, guard and repair settings, then ``settings``,
    in config order."""
    a = config.policy_alpha
    values = [{"mixing": "bernoulli", "alpha": x} for x in config.alphas]
    values += [{"mixing": "gate", "alpha": a, "tau": v} for v in config.taus]
    values += [{"mixing": "exchange", "alpha": a, "kappa": v} for v in config.kappas]
    values += [{"mixing": "guard", "alpha": a, "delta": v} for v in config.deltas]
    values += [{"mixing": "bernoulli", "alpha": a, "repair": k} for k in config.repairs]
    settings = [make_setting(v) for v in values]
    settings += [_custom_setting(v, a, f"settings.{i}") for i, v in enumerate(config.settings)]
    return settings


@dataclass(frozen=True)
class Cascade:
    """A retry schedule: each stage one attempt, the failed examples on to the next stage."""

    label: str
    stem: str
    stages: tuple[Setting, ...]


def frontier_cascades(config: FrontierConfig) -> list[Cascade]:
    """``config.cascades`` as Cascades, each stage checked as a ``settings`` entry."""
    cascades = []
    for i, stages in enumerate(config.cascades):
        where = f"cascades.{i}"
        if not isinstance(stages, list) or not 2 <= len(stages) <= config.attempts:
            raise ConfigError(
                f"give a list of 2 to attempts ({config.attempts}) settings", field=where
            )
        built = []
        for k, values in enumerate(stages):
            if isinstance(values, dict) and values.get("repair"):
                raise ConfigError("a stage decodes once: no repair", field=f"{where}.{k}.repair")
            built.append(_custom_setting(values, config.policy_alpha, f"{where}.{k}"))
        cascades.append(
            Cascade(
                "cascade: " + " → ".join(s.label for s in built),
                "cascade-" + "--".join(s.stem for s in built),
                tuple(built),
            )
        )
    stems = [c.stem for c in cascades]
    if len(set(stems)) < len(stems):
        raise ConfigError("a cascade is listed twice", field="cascades")
    return cascades


def _rollout_config(config: FrontierConfig, setting: Setting) -> RolloutConfig:
    owned: dict[str, Any] = {
        "model": config.model,
        "data": config.data,
        "out": str(Path(config.out) / "rollouts" / f"{setting.stem}.jsonl"),
        "seed": config.seed,
        "max_retries": config.attempts - 1,
        "trace": True,
        "repair": 0,
        "answer_guard": False,
        "tau": None,
        "kappa": None,
        "delta": None,
    }
    return stage_config(RolloutConfig, config.rollout, **{**owned, **setting.values})


def run_frontier(
    config: FrontierConfig,
    *,
    model: Any = None,
    tokenizer: Any = None,
    verifier: Callable[[str, str], bool] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Decode every setting, score the targets, write the table and plot; returns the table.

    ``model``/``tokenizer`` skip loading ``config.model``; ``verifier`` replaces the rollout's
    named one (as in ``run_rollout``)."""
    from mixsd_core import (
        load_rollout_model,
        read_records,
        run_rollout,
        score_targets,
        summarize_nll,
    )

    out = Path(config.out)
    settings = frontier_settings(config)
    rollouts = [_rollout_config(config, s) for s in settings]  # every config checked first
    cascades = frontier_cascades(config)
    records = read_records(config.data)[: config.rollout.limit]
    if model is None or tokenizer is None:
        first = rollouts[0] if rollouts else _rollout_config(config, cascades[0].stages[0])
        model, tokenizer = load_rollout_model(first)
    rows: list[dict[str, Any]] = []
    kept_by_setting: list[list[dict[str, Any]]] = []
    for setting, rollout in zip(settings, rollouts, strict=True):
        manifest = run_rollout(
            rollout, model=model, tokenizer=tokenizer, verifier=verifier, progress=progress
        )
        # Plain JSONL: a kept mixed target may be blank (the data-file checks would refuse it).
        kept = read_jsonl(rollout.out, allow_empty=True, what="rollout file")
        kept_by_setting.append(kept)
        rows.append(_yield_row(setting, rollout, manifest, kept, len(records), config.attempts))
    for cascade in cascades:
        row, kept = _run_cascade(
            config, cascade, records, lambda r: run_rollout(
                r, model=model, tokenizer=tokenizer, verifier=verifier, progress=progress
            )
        )  # fmt: skip
        kept_by_setting.append(kept)
        rows.append(row)
    if config.nll:
        scorer = _nll_model(config, model)

        def score(targets: list[dict[str, Any]]) -> dict[str, Any]:
            return {s.id: s for s in score_targets(scorer, tokenizer, targets)}

        sft = score(records)
        common = set.intersection(*({r["id"] for r in kept} for kept in kept_by_setting))
        for row, kept in zip(rows, kept_by_setting, strict=True):
            scored = score(kept) if kept else {}
            filled = [scored.get(r["id"], sft[r["id"]]) for r in records]
            row["nll"] = {
                "kept": _nll_summary(list(scored.values()), summarize_nll),
                "paired": _nll_summary([scored[i] for i in sorted(common)], summarize_nll),
                "filled": _nll_summary(filled, summarize_nll),
            }
        sft_row = _nll_summary(list(sft.values()), summarize_nll)
    else:
        sft_row, common = None, set()
    # The ceiling of any one setting: the examples some setting verifies.
    verified = set().union(*({r["id"] for r in kept} for kept in kept_by_setting))
    table = {
        "examples": len(records),
        "attempts": config.attempts,
        "seed": config.seed,
        "model": config.model,
        "verified_by_any": len(verified),
        "never_verified": [r["id"] for r in records if r["id"] not in verified],
        "paired_examples": len(common),
        "sft_nll": sft_row,
        "settings": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "frontier.json", table, indent=1)
    write_text(out / "frontier.md", frontier_markdown(table))
    frontier_plot(table, out / "frontier.png")
    return table


def _run_cascade(
    config: FrontierConfig,
    cascade: Cascade,
    records: list[dict[str, Any]],
    rollout: Callable[[RolloutConfig], dict[str, Any]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Decode ``cascade``'s stages in turn, each on the examples no earlier stage kept; returns
    its table row and its kept records (in data order, ``attempt`` = the stage that kept it)."""
    folder = Path(config.out) / "rollouts" / cascade.stem
    folder.mkdir(parents=True, exist_ok=True)
    pending, kept_at, passes = list(records), {}, 0
    for k, stage in enumerate(cascade.stages):
        if not pending:
            break
        data = folder / f"stage-{k}.data.jsonl"
        write_jsonl(data, pending)
        stage_rollout = replace(
            _rollout_config(config, stage),
            data=str(data),
            out=str(folder / f"stage-{k}.jsonl"),
            max_retries=0,
        )
        passes += rollout(stage_rollout)["decoder_passes"]
        for record in read_jsonl(stage_rollout.out, allow_empty=True, what="rollout file"):
            kept_at[record["id"]] = {**record, "attempt": k, "cascade_stage": k}
        pending = [r for r in pending if r["id"] not in kept_at]
    kept = [kept_at[r["id"]] for r in records if r["id"] in kept_at]
    merged = Path(config.out) / "rollouts" / f"{cascade.stem}.jsonl"
    write_jsonl(merged, kept)
    shares = mixing_shares(kept)
    row = {
        "label": cascade.label,
        "mixing": "cascade",
        "alpha": None,
        "knob": {},
        "stages": [dict(s.values) for s in cascade.stages],
        "repair": 0,
        "answer_guard": any(s.values.get("answer_guard") for s in cascade.stages),
        "file": str(merged),
        **_yield_counts(kept, passes, len(records), config.attempts),
        "effective_naive_share": shares.get("effective_naive_share"),
        "naive_token_share": shares["naive_token_share"],
    }
    return row, kept


def _budgets(attempts: int) -> list[int]:
    """The attempt budgets the yield is given for: 1, 3 and all (those within ``attempts``)."""
    return sorted({1, min(3, attempts), attempts})


def _yield_counts(
    kept: list[dict[str, Any]], passes: int, examples: int, attempts: int
) -> dict[str, Any]:
    """A setting's yield: kept targets, the share kept within each budget (a kept target's
    ``attempt`` below it), and decoder passes in all and per kept target."""
    return {
        "kept": len(kept),
        "yield_within": {
            str(k): sum(r["attempt"] < k for r in kept) / examples for k in _budgets(attempts)
        },
        "passes_per_kept": passes / len(kept) if kept else None,
        "decoder_passes": passes,
    }


def _yield_row(
    setting: Setting,
    rollout: RolloutConfig,
    manifest: dict[str, Any],
    kept: list[dict[str, Any]],
    examples: int,
    attempts: int,
) -> dict[str, Any]:
    return {
        "label": setting.label,
        "mixing": rollout.mixing,
        "alpha": rollout.alpha,
        "knob": {k: v for k, v in setting.values.items() if k in ("tau", "kappa", "delta")},
        "repair": rollout.repair,
        "answer_guard": rollout.answer_guard,
        "file": rollout.out,
        **_yield_counts(kept, manifest["decoder_passes"], examples, attempts),
        "effective_naive_share": manifest["effective_naive_share"],
        "naive_token_share": manifest["naive_token_share"],
    }


def _nll_model(config: FrontierConfig, model: Any) -> Any:
    """The base model in fp32 for the NLL (the rollout model itself when it already is)."""
    import torch

    if config.rollout.backend == "hf" and getattr(model, "dtype", None) == torch.float32:
        return model
    from mixsd_core import load_model

    return load_model(config.model, dtype="fp32", device=config.rollout.device)[0]


def _nll_summary(scored: list[Any], summarize: Any) -> dict[str, Any] | None:
    if not scored:
        return None
    summary = summarize(scored, (DEFAULT_NLL_THRESHOLD,), quantiles=2)
    return {
        "records": summary["records"],
        "tokens": summary["tokens"],
        "mean": summary["mean_nll"],
        f"share_above_{_KEY}": summary["share_above"][_KEY],
    }


# ---------------------------------------------------------------------------- table and plot


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _ceiling_lines(table: dict[str, Any]) -> list[str]:
    """How many examples at least one setting verified (none: what no setting reaches)."""
    if "verified_by_any" not in table:  # a table written before the field
        return []
    never = table["never_verified"]
    shown = ", ".join(never[:10]) + (f" and {len(never) - 10} more" if len(never) > 10 else "")
    return [
        f"Verified by at least one setting: {table['verified_by_any']} of {table['examples']}"
        + (f" (never: {shown})." if never else "."),
        "",
    ]


def frontier_markdown(table: dict[str, Any], heading: str = "#") -> str:
    """The table as Markdown under a ``heading`` of that level: one row per setting."""
    n, attempts = table["examples"], table["attempts"]
    head = [
        "setting",
        *(f"within {k}" for k in _budgets(attempts)),
        "passes / kept",
        "naive share (disagreements)",
        "NLL mean paired",
        f"share > {_KEY} paired",
        "NLL mean filled",
        f"share > {_KEY} filled",
    ]
    lines = [
        f"{heading} Target frontier: {n} examples, seed {table['seed']}, model {table['model']}",
        "",
        f"Paired NLL over the {table['paired_examples']} examples every setting kept; filled NLL "
        "over all examples, a failed one counted with its SFT target.",
        "",
        *_ceiling_lines(table),
        "| " + " | ".join(head) + " |",
        "| " + " | ".join("---" for _ in head) + " |",
    ]
    for row in table["settings"]:
        nll = row.get("nll") or {}
        paired, filled = nll.get("paired") or {}, nll.get("filled") or {}
        cells = [
            row["label"],
            *(_pct(row["yield_within"][str(k)]) for k in _budgets(attempts)),
            _num(row["passes_per_kept"]),
            _pct(row["effective_naive_share"]),
            _num(paired.get("mean")),
            _pct(paired.get(f"share_above_{_KEY}")),
            _num(filled.get("mean")),
            _pct(filled.get(f"share_above_{_KEY}")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    sft = table.get("sft_nll")
    if sft:
        lines += [
            "",
            f"SFT targets: NLL mean {_num(sft['mean'])}, share > {_KEY} "
            f"{_pct(sft[f'share_above_{_KEY}'])}.",
        ]
    return "\n".join(lines) + "\n"


def _filled_mean(row: dict[str, Any]) -> float | None:
    filled = (row.get("nll") or {}).get("filled")
    return None if filled is None else filled["mean"]


def _points(
    rows: list[dict[str, Any]], value: _RowValue
) -> list[tuple[float, float, dict[str, Any]]]:
    """(effective naive share, value, row) of the rows that have the value."""
    points = []
    for row in rows:
        y = value(row)
        if y is not None:
            points.append((float(row["effective_naive_share"]), y, row))
    return points


def paper_alphas(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of the paper's fixed alphas: the blind mask alone (no repair, no answer guard)."""
    return [
        r
        for r in rows
        if r["mixing"] == "bernoulli" and not r["repair"] and not r.get("answer_guard")
    ]


def frontier_plot(table: dict[str, Any], path: Path) -> Path:
    """Verified yield (within 1 and within all attempts) and the filled NLL against the effective
    naive share: the paper's fixed alphas (the blind mask alone) as a labelled line, every other
    setting as labelled points."""
    from matplotlib.figure import Figure

    from mixsd._plots import label_axes, save_png

    attempts = str(table["attempts"])
    rows = [r for r in table["settings"] if r["effective_naive_share"] is not None]
    fixed = sorted(paper_alphas(rows), key=lambda r: r["effective_naive_share"])
    others = [r for r in rows if r not in fixed]
    series: tuple[tuple[int, str, _RowValue, str, str], ...] = (  # panel, name, value, line, marker
        (0, "within 1 attempt", lambda r: 100 * r["yield_within"]["1"], "--", "^"),
        (0, f"within {attempts}", lambda r: 100 * r["yield_within"][attempts], "-", "o"),
        (1, "filled", _filled_mean, "-", "o"),
    )
    height = 5.5 + 0.18 * len(others)  # inches: the panels, then a line of key per setting
    fig = Figure(figsize=(11, height))
    axes = [fig.add_subplot(1, 2, k) for k in (1, 2)]
    # The other settings are numbered on the points and named in a key under the panels: their
    # labels are long and their points often close.
    number = {r["label"]: str(k) for k, r in enumerate(others, 1)}
    for panel, name, value, line, marker in series:
        ax = axes[panel]
        points = _points(fixed, value)
        if points:
            xs, ys, _ = zip(*points, strict=True)
            ax.plot(xs, ys, line + marker, color="tab:blue", label=f"fixed alpha, {name}")
            for x, y, r in points:
                if marker == "o":
                    ax.annotate(f"{r['alpha']:g}", (x, y), textcoords="offset points",
                                xytext=(-4, -11), fontsize=7, color="tab:blue")  # fmt: skip
        for index, (x, y, r) in enumerate(_points(others, value)):
            ax.scatter([x], [y], marker=marker, color="tab:orange",
                       label=f"other settings, {name}" if index == 0 else None)  # fmt: skip
            if marker == "o":
                ax.annotate(number[r["label"]], (x, y), textcoords="offset points", xytext=(4, 4),
                            fontsize=8, color="tab:orange")  # fmt: skip
    for ax, ylabel in zip(
        axes,
        ("verified yield (% of examples)", "base-model NLL of the targets, filled (nats/token)"),
        strict=True,
    ):
        if not ax.collections and not ax.lines:
            ax.text(0.5, 0.5, "not computed (nll: false)", ha="center", transform=ax.transAxes)
        label_axes(ax, "effective naive share (over disagreement positions)", ylabel, "")
        if ax.get_legend_handles_labels()[0]:  # under the panel, off the points
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    key = [f"{number[r['label']]}: {r['label']}" for r in others]
    if key:
        fig.text(0.01, 0.01, "\n".join(key), fontsize=8, va="bottom", color="tab:orange")
    # Room for the key: an 8-point line is about 0.155 inches.
    return save_png(fig, path, rect=(0, (0.155 * len(key) + 0.12) / height, 1, 1))


def report_lines(table_path: Path, run_dir: Path) -> list[str]:
    """The run report's section: the table (no training) and its plot, where drawn."""
    import os

    table = read_json(table_path)
    lines = [frontier_markdown(table, heading="##"), ""]
    plot = table_path.with_name("frontier.png")
    if plot.is_file():
        lines += [f"![target frontier]({os.path.relpath(plot, run_dir)})", ""]
    return lines


# ---------------------------------------------------------------------------- command


@config_command(FrontierConfig, lists=True)
def frontier_command(
    config: FrontierConfig,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Sweep fixed alphas and each mixing policy's knob on the same examples and seeds: verified
    yield, decoder passes, naive share and target NLL per setting (frontier.json/.md/.png)."""
    check_output(config.out, folder=True)  # fail before any work
    table = run_frontier(config, progress=not quiet)
    typer.echo(frontier_markdown(table))
    typer.echo(f"wrote {Path(config.out) / 'frontier.md'}")
