"""Where did fine-tuning move the weights? Displacement, Fisher-weighted displacement, alignment.

For each checkpoint, Δθ = θ − θ₀ over the parameters the Fisher covers, and

    raw  = ‖Δθ‖² = Σ Δθᵢ²            fw = Σ Fᵢ Δθᵢ²
    ρ    = (fw / raw) / mean(F)       quadratic prediction = ½ fw

ρ is the Fisher mass per unit of squared displacement, relative to a random direction: 1 means
the update is as sensitive as an isotropic one, > 1 that it concentrates on high-Fisher weights.
Groups (layers, modules, tensors) report ρ against the global mean(F), so they add up to the
total, and ``rho_within`` against their own mean(F).

Forgetting measured here is ΔNLL (sample mean), key ``delta_nll``: on the ``loss_data`` records,
the mean over samples of each response's NLL (summed over its tokens, as the Fisher's ℓ_n; its
mean for a Fisher computed with ``reduction: mean``), checkpoint minus base (``mean_sample_nll``).
It is the loss whose curvature F is, so ½ ΣFΔθ² predicts it. forgetbench's ΔL_ref (token mean)
pools all response tokens instead; given as forgetting input it is kept under ``delta_l_ref``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from fishertools._config import CompareConfig, FisherError
from fishertools._data import EncodedSample, encode_records, read_records
from fishertools._fisher import FisherResult, load_fisher
from fishertools._forgetting import (
    DELTA_NLL,
    checkpoint_labels,
    load_forgetting,
    match_forgetting,
)
from fishertools._models import is_checkpoint_dir, load_checkpoint, load_model, load_tokenizer
from fishertools._stats import pearson, spearman
from mixsd_base import write_text

__all__ = [
    "METRICS",
    "alignment",
    "compare_checkpoints",
    "displacement_sums",
    "expand_checkpoints",
    "layer_key",
    "mean_sample_nll",
    "module_key",
]

METRICS = ("raw_sq", "fisher_weighted", "rho", "quadratic_prediction")
_LAYER = re.compile(r"^(.*?\.(?:layers|h|blocks|layer)\.\d+)\.(.+)$")


def displacement_sums(fisher: torch.Tensor, delta: torch.Tensor) -> tuple[float, float, float, int]:
    """(Σ Δ², Σ F Δ², Σ F, n) of one tensor, summed in float64 so 10⁸ terms lose nothing."""
    f, d = fisher.double(), delta.double()
    sq = d.square()
    return sq.sum().item(), (f * sq).sum().item(), f.sum().item(), f.numel()


def alignment(raw_sq: float, fisher_weighted: float, mean_fisher: float) -> float | None:
    """ρ = (Σ FΔ² / ‖Δ‖²) / mean(F); ``None`` for a zero displacement or an all-zero Fisher."""
    if raw_sq <= 0 or mean_fisher <= 0:
        return None
    return fisher_weighted / raw_sq / mean_fisher


def layer_key(name: str) -> str:
    """``model.layers.3.mlp.up_proj.weight`` -> ``model.layers.3``; other tensors -> their module."""
    match = _LAYER.match(name)
    return match.group(1) if match else name.rsplit(".", 1)[0]


def module_key(name: str) -> str:
    """``model.layers.3.mlp.up_proj.weight`` -> ``mlp.up_proj`` (the same module in every layer)."""
    match = _LAYER.match(name)
    return (match.group(2) if match else name).rsplit(".", 1)[0]


def _summary(sums: list[float], mean_fisher: float) -> dict[str, Any]:
    raw, fw, fsum, n = sums
    return {
        "raw_sq": raw,
        "fisher_weighted": fw,
        "rho": alignment(raw, fw, mean_fisher),
        "rho_within": alignment(raw, fw, fsum / n),
        "quadratic_prediction": fw / 2,
        "num_params": int(n),
    }


def _displacement(
    fisher: dict[str, torch.Tensor],
    base: dict[str, torch.Tensor],
    tuned: dict[str, torch.Tensor],
    mean_fisher: float,
) -> dict[str, Any]:
    """Totals and per-layer / per-module / per-tensor breakdowns of one checkpoint."""
    groups: dict[str, dict[str, list[float]]] = {
        "per_layer": {},
        "per_module": {},
        "per_tensor": {},
    }
    total = [0.0, 0.0, 0.0, 0]
    for name, f in fisher.items():
        delta = tuned[name].float() - base[name].float()  # on the models' device
        sums = displacement_sums(f.to(delta.device), delta)
        keys = {"per_layer": layer_key(name), "per_module": module_key(name), "per_tensor": name}
        for kind, key in keys.items():
            acc = groups[kind].setdefault(key, [0.0, 0.0, 0.0, 0])
            for i, value in enumerate(sums):
                acc[i] += value
        for i, value in enumerate(sums):
            total[i] += value
    out: dict[str, Any] = {"totals": _summary(total, mean_fisher)}
    for kind, table in groups.items():
        out[kind] = {key: _summary(sums, mean_fisher) for key, sums in table.items()}
    return out


def _parameters(
    model: torch.nn.Module, fisher: dict[str, torch.Tensor], where: str
) -> dict[str, torch.Tensor]:
    """The model's own tensors for every Fisher entry (no copy: on its device, in its dtype),
    shapes checked."""
    params = dict(model.named_parameters())
    out = {}
    for name, f in fisher.items():
        if name not in params:
            raise FisherError(
                f"{where}: has no parameter {name} (is the Fisher from another model?)"
            )
        if tuple(params[name].shape) != tuple(f.shape):
            raise FisherError(
                f"{where}: shape mismatch for {name}: Fisher {tuple(f.shape)} vs model {tuple(params[name].shape)}"
            )
        out[name] = params[name].detach()
    return out


def mean_sample_nll(
    model: torch.nn.Module,
    samples: list[EncodedSample],
    *,
    batch_size: int = 8,
    reduction: str = "sum",
) -> float:
    """Mean over samples of each sample's response NLL (summed over its response tokens, or
    their mean with ``reduction="mean"``: the Fisher's ℓ_n). ΔNLL (sample mean) is a checkpoint's
    value minus the base model's. The NLL itself is mixsd_core.response_nll_tensors."""
    from mixsd_core import response_nll_tensors

    prompts, responses = [], []
    for sample in samples:
        scored = sample.loss_mask.nonzero().squeeze(-1)  # one contiguous span (encode_records)
        start, end = int(scored[0]), int(scored[-1]) + 1
        ids = sample.input_ids.tolist()
        prompts.append(ids[:start])
        responses.append(ids[start:end])
    nll = response_nll_tensors(model, prompts, responses, batch_size=batch_size, padding="right")
    per_sample = [(t.mean() if reduction == "mean" else t.sum()).item() for t in nll]
    return sum(per_sample) / len(per_sample)


def expand_checkpoints(paths: list[Path]) -> list[Path]:
    """Checkpoint folders as given; a run folder without a model expands to its checkpoint-* folders."""
    out: list[Path] = []
    for path in paths:
        path = Path(path)
        if not path.is_dir():
            raise FisherError(f"checkpoint folder not found: {path.absolute()}")
        if is_checkpoint_dir(path):
            out.append(path)
            continue
        inner = [p for p in path.iterdir() if p.is_dir() and is_checkpoint_dir(p)]
        if not inner:
            raise FisherError(
                f"not a checkpoint (no config.json or adapter_config.json): {path.absolute()}"
            )
        step = re.compile(r"(\d+)$")
        out.extend(
            sorted(
                inner, key=lambda p: (int(m.group(1)) if (m := step.search(p.name)) else -1, p.name)
            )
        )
    if len(set(p.resolve() for p in out)) != len(out):
        raise FisherError("a checkpoint is listed twice")
    return out


def _correlations(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    measures = sorted({m for row in rows for m in row["forgetting"]})
    result: dict[str, dict[str, Any]] = {}
    for measure in measures:
        result[measure] = {}
        for metric in METRICS:
            pairs = [
                (row["totals"][metric], row["forgetting"][measure])
                for row in rows
                if measure in row["forgetting"] and row["totals"][metric] is not None
            ]
            xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
            result[measure][metric] = {
                "n": len(pairs),
                "pearson": pearson(xs, ys),
                "spearman": spearman(xs, ys),
            }
    return result


def compare_checkpoints(
    fisher: FisherResult | str | Path,
    base: str | Path | torch.nn.Module,
    checkpoints: Sequence[str | Path],
    config: CompareConfig | None = None,
    *,
    out: str | Path | None = None,
    tokenizer: Any = None,
    progress: bool = False,
) -> dict[str, Any]:
    """The displacement/alignment report of each checkpoint against ``base``; written if ``out``."""
    config = config or CompareConfig()
    fisher_path = None if isinstance(fisher, FisherResult) else str(Path(fisher).absolute())
    result = fisher if isinstance(fisher, FisherResult) else load_fisher(fisher)
    paths = expand_checkpoints([Path(c) for c in checkpoints])
    if not paths:
        raise FisherError("no checkpoints given")
    forgetting: list[dict[str, float]] = [{} for _ in paths]
    unmatched: list[str] = []
    if config.forgetting is not None:  # read before loading any model: bad input fails fast
        forgetting, unmatched = match_forgetting(
            load_forgetting(config.forgetting), paths, config.forgetting
        )
    # The Fisher's own ℓ_n; Fishers written before the sum default carry "mean" in the manifest.
    reduction = result.manifest.get("config", {}).get("reduction", "mean")
    samples = None
    if config.loss_data is not None:
        records = read_records(config.loss_data, config.loss_samples)
        samples = encode_records(
            records,
            tokenizer or load_tokenizer(base),
            max_length=config.max_length,
            source=str(config.loss_data),
        )
    base_name = str(base) if isinstance(base, str | Path) else getattr(base, "name_or_path", "")
    base_model = load_model(base, device=config.device) if isinstance(base, str | Path) else base
    theta0 = _parameters(base_model, result.fisher, f"base model {base_name}")
    total_f = sum(f.double().sum().item() for f in result.fisher.values())
    mean_fisher = total_f / sum(f.numel() for f in result.fisher.values())
    base_nll = (
        mean_sample_nll(base_model, samples, batch_size=config.batch_size, reduction=reduction)
        if samples
        else None
    )

    rows = []
    labels = checkpoint_labels(paths)
    for path, label, measures in tqdm(
        list(zip(paths, labels, forgetting, strict=True)), desc="compare", disable=not progress
    ):
        model, kind = load_checkpoint(path, base_model)
        row: dict[str, Any] = {"name": label, "path": str(path.absolute()), "kind": kind}
        row.update(
            _displacement(
                result.fisher, theta0, _parameters(model, result.fisher, str(path)), mean_fisher
            )
        )
        measures = dict(measures)
        if samples is not None and base_nll is not None:
            measures[DELTA_NLL] = (
                mean_sample_nll(model, samples, batch_size=config.batch_size, reduction=reduction)
                - base_nll
            )
        del model
        row["forgetting"] = measures
        # ½ ΣFΔθ² predicts the change of the Fisher's own loss: ΔNLL (sample mean), no other.
        measured = measures.get(DELTA_NLL)
        predicted = row["totals"]["quadratic_prediction"]
        row["second_order"] = {
            "quadratic_prediction": predicted,
            DELTA_NLL: measured,
            "ratio": predicted / measured if measured else None,
        }
        rows.append(row)

    report: dict[str, Any] = {
        "fisher": {"path": fisher_path, "manifest": result.manifest},
        "base": base_name,
        "mean_fisher": mean_fisher,
        "num_params": sum(f.numel() for f in result.fisher.values()),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "base_nll": base_nll,
        "checkpoints": rows,
        "correlations": _correlations(rows),
        "unmatched_forgetting": unmatched,
    }
    if out is not None:
        write_report(report, Path(out), plot=config.plot)
    return report


def write_report(report: dict[str, Any], out: Path, *, plot: bool = True) -> Path:
    """The JSON report (atomically) and, if asked, ``<out stem>.png`` beside it."""
    if out.suffix != ".json":
        raise FisherError(f"the report must end in .json: {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if plot:
        from fishertools._plot import plot_report

        report["plot"] = str(plot_report(report, out.with_suffix(".png")).absolute())
    return write_text(out, json.dumps(report, indent=2) + "\n")
