"""The Fisher stage of ``mixsd run``: the base model's diagonal Fisher on the reference set of
the evaluation (general prompts + the base model's greedy responses), then the displacement and
alignment of every checkpoint of every trained method, with forgetting measured as the NLL
increase on that same set (the paper's Section 7)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from mixsd._run_config import RunConfig, RunError
from mixsd._units import UnitRunner, model_digest, write_jsonl
from mixsd_core import file_sha256

__all__ = ["FisherStage"]


class FisherStage:
    """Mixed into ``Pipeline``: needs its config, root, units, base model and digests."""

    config: RunConfig
    root: Path
    units: UnitRunner
    progress: bool
    base_model: str
    base_digest: Any

    def fisher(self, runs: dict, evals: dict[str, Path]) -> Path | None:
        if self.config.fisher is None:
            return None
        folder = self.root / "fisher"
        report = folder / "compare.json"
        options = dict(self.config.fisher)
        eval_options = {**self.config.eval}
        n_ref = int(options.pop("samples", eval_options.get("limit") or 32))
        checkpoints = sorted(
            str(p)
            for label in runs
            for p in (self.root / "train" / label).glob("checkpoint-*")
            if p.is_dir()
        )
        # An edit (MEMIT) leaves one model and no checkpoints: it is its own point.
        checkpoints += [s["checkpoint"] for s in runs.values() if s.get("rule") == "memit"]
        inputs = {
            "options": options,
            "samples": n_ref,
            "model": self.base_digest,
            "base_eval": file_sha256(evals["base"]),
            "checkpoints": [(c, model_digest(c)) for c in checkpoints],
        }

        def build() -> None:
            self._fisher(folder, report, options, n_ref, checkpoints)

        self.units.run("fisher", "compare", inputs, [report], build)
        return report

    def _fisher(
        self, folder: Path, report: Path, options: dict, n_ref: int, checkpoints: list[str]
    ) -> None:
        from fishertools import (
            CompareConfig,
            FisherConfig,
            compare_checkpoints,
            compute_fisher,
            save_fisher,
        )
        from mixsd_core import load_model

        model, tokenizer = load_model(self.base_model, dtype="fp32", device="cpu")
        reference = folder / "reference.jsonl"
        write_jsonl(reference, self._reference_records(model, tokenizer, n_ref))
        fisher_keys = {f.name for f in fields(FisherConfig)}
        fisher_config = FisherConfig(**{k: v for k, v in options.items() if k in fisher_keys})
        compare_keys = {f.name for f in fields(CompareConfig)}  # max_length, device: both
        compare_options = {k: v for k, v in options.items() if k in compare_keys}
        result = compute_fisher(
            model, reference, fisher_config, tokenizer=tokenizer, progress=self.progress
        )
        save_fisher(result, folder / "base.safetensors")
        model.zero_grad(set_to_none=True)
        compare_config = CompareConfig(
            **compare_options, loss_data=reference, loss_samples=n_ref, plot=True
        )
        compare_checkpoints(
            result,
            model,
            checkpoints,
            compare_config,
            out=report,
            tokenizer=tokenizer,
            progress=self.progress,
        )

    def _reference_records(self, model: Any, tokenizer: Any, n: int) -> list[dict[str, Any]]:
        """The reference-loss set of the evaluation (general prompts + the base model's greedy
        responses): Fisher is estimated on it and forgetting is the NLL increase on it."""
        from forgetbench import EvalConfig, reference_prompts, reference_set

        defaults = {f.name: f.default for f in fields(EvalConfig)}
        options = {**defaults, **self.config.eval}
        prompts = reference_prompts(n, prompts_file=options.get("ref_prompts_file"))
        ref = reference_set(
            self.base_model,
            prompts,
            max_new_tokens=options["ref_max_new_tokens"],
            batch_size=options["batch_size"],
            cache_dir=str(self.root / "cache"),
            load=lambda spec: (model, tokenizer),
            base=(model, tokenizer),
        )
        records = []
        for i, (prompt, ids) in enumerate(zip(prompts, ref["responses"], strict=True)):
            response = tokenizer.decode(ids, skip_special_tokens=True)
            if response.strip():  # an empty reply has no tokens to take a gradient on
                records.append({"id": f"ref-{i:04d}", "prompt": prompt, "response": response})
        if not records:
            raise RunError("the base model gave only empty reference responses: no Fisher data")
        return records
