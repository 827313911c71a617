"""``mixsd run CONFIG``: world -> data -> rollouts -> NLL -> training -> evaluation -> Fisher ->
report, into one run folder with a subfolder per stage. Each step is a unit (see ``_units``):
reused when its inputs are unchanged, resumed when interrupted, redone when its inputs changed.

    RUN/world/           the kgworld folder (or the one named by world.path)
    RUN/data/            the training records and the in-domain splits about the same facts
    RUN/rollouts/        mixsd-aALPHA.jsonl (+ manifest) per alpha
    RUN/nll/             base-model NLL of each method's targets
    RUN/train/NAME/      checkpoints, trainer state, selection.json
    RUN/eval/NAME.json   forgetbench results of the base and of each selected checkpoint
    RUN/fisher/          the base Fisher, the reference set, the displacement report
    RUN/report.md        and RUN/plots/*.png
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mixsd._fisher_stage import FisherStage
from mixsd._mounts import model_folder
from mixsd._run_config import ROLLOUT_METHODS, MethodSpec, RunConfig, RunError
from mixsd._stage_options import check_sections, config_class, train_config_file, train_overrides
from mixsd._units import UnitRunner, model_digest, write_json, write_jsonl
from mixsd_core import file_sha256

__all__ = ["check_sections", "run_pipeline"]

KGFACT_SPLITS = ("train", "paraphrase", "twohop", "retrieval")


class Pipeline(FisherStage):
    """The stages of one run; each method returns what later stages need."""

    def __init__(self, config: RunConfig, *, progress: bool = True):
        self.config = config
        self.root = Path(config.out).absolute()
        self.units = UnitRunner(self.root)
        self.progress = progress
        try:
            self.base_model = str(model_folder(config.model))
        except ValueError as exc:
            raise RunError(f"{config.where('model')}: {exc}") from None
        self.base_digest = model_digest(self.base_model)

    # -- data -------------------------------------------------------------------------------
    def world(self) -> tuple[Path, str]:
        import kgworld

        given = self.config.world.get("path")
        if given:
            folder = Path(given).expanduser().absolute()
            manifest = folder / "manifest.json"
            if not manifest.is_file():
                raise RunError(f"{self.config.where('world', 'path')}: {folder} is not a world")
            return folder, file_sha256(manifest)
        try:
            world_config = kgworld.resolve_config(dict(self.config.world))
        except kgworld.KGWorldError as exc:
            raise RunError(f"{self.config.where('world')}: {exc}") from None
        folder = self.root / "world"

        def build() -> None:
            kgworld.generate(world_config).write(folder, overwrite=True)

        digest = self.units.run(
            "world", "world", {"config": world_config.to_dict()}, [folder], build
        )
        return folder, digest

    def data(self, world: Path, world_digest: str) -> tuple[Path, Path, str]:
        """The training records (the first ``limit`` of the split) and a world-shaped folder
        whose in-domain splits ask only about those facts."""
        from kgworld import read_jsonl

        split = str(self.config.data.get("split", "kgfact/train"))
        limit = self.config.data.get("limit")
        indomain = list(self.config.data.get("indomain", KGFACT_SPLITS[1:]))
        unknown = set(self.config.data) - {"split", "limit", "indomain"}
        if unknown:
            raise RunError(f"{self.config.where('data', sorted(unknown)[0])}: unknown data option")
        if not (world / f"{split}.jsonl").is_file():
            raise RunError(f"{self.config.where('data', 'split')}: {world / split}.jsonl not found")
        folder = self.root / "data"
        train_file = folder / f"{split}.jsonl"

        def build() -> None:
            records = read_jsonl(world / f"{split}.jsonl")[:limit]
            write_jsonl(train_file, records)
            family, _, name = split.partition("/")
            if family == "kgfact" and name == "train":
                facts = {r["meta"]["fact"] for r in records}
                for other in indomain:
                    source = world / "kgfact" / f"{other}.jsonl"
                    if source.is_file():
                        kept = [r for r in read_jsonl(source) if _about(r, facts)]
                        write_jsonl(folder / "kgfact" / f"{other}.jsonl", kept)
            elif family == "edit" and name == "train":  # the edits chosen, and what they touch
                chosen = {r["id"] for r in records}
                for other in ("paraphrase", "multihop", "locality"):
                    source = world / "edit" / f"{other}.jsonl"
                    if source.is_file():
                        kept = [r for r in read_jsonl(source) if _touches(r, chosen, other)]
                        write_jsonl(folder / "edit" / f"{other}.jsonl", kept)
            elif family == "kgfunc":  # held-out operations / inputs: evaluated as generated
                for other in ("test", "unseen"):
                    if (world / "kgfunc" / f"{other}.jsonl").is_file():
                        records_other = read_jsonl(world / "kgfunc" / f"{other}.jsonl")
                        write_jsonl(folder / "kgfunc" / f"{other}.jsonl", records_other)
            # The world manifest travels along: evaluations record what they ran on.
            (folder / "manifest.json").write_bytes((world / "manifest.json").read_bytes())

        bad = [x for x in indomain if x not in KGFACT_SPLITS[1:]]
        if bad:
            where = self.config.where("data", "indomain")
            raise RunError(f"{where}: {bad} not among {list(KGFACT_SPLITS[1:])}")
        inputs = {"world": world_digest, "split": split, "limit": limit, "indomain": indomain}
        digest = self.units.run("data", split.replace("/", "-"), inputs, [train_file], build)
        return folder, train_file, digest

    # -- targets ----------------------------------------------------------------------------
    def rollouts(self, train_file: Path, data_digest: str) -> dict[float, tuple[Path, str]]:
        from mixsd_core import RolloutConfig, run_rollout

        done = {}
        for alpha in self.config.rollout_alphas():
            out = self.root / "rollouts" / f"mixsd-a{alpha:g}.jsonl"
            values = {
                **self.config.rollout,
                "model": self.base_model,
                "data": str(train_file),
                "out": str(out),
                "alpha": alpha,
                "seed": self.config.seed,
            }
            try:
                rollout_config = RolloutConfig.from_dict(values)
            except ValueError as exc:
                raise RunError(f"{self.config.where('rollout')}: {exc}") from None
            inputs = {**values, "model": self.base_digest, "data": data_digest, "out": out.name}

            def build(c: RolloutConfig = rollout_config) -> None:
                run_rollout(c, progress=self.progress)

            digest = self.units.run("rollouts", out.stem, inputs, [out], build)
            if _kept(rollout_config) == 0:
                self.units.echo(
                    f"[rollouts] {out.stem}: no target passed the verifier; methods trained on "
                    "it are skipped (see its manifest for the drop count)"
                )
                continue
            done[alpha] = (out, digest)
        return done

    def nll(self, train_file: Path, data_digest: str, rollouts: dict) -> dict[str, Path]:
        from mixsd_core import NLLConfig, run_nll

        sources = {"sft": (train_file, data_digest)}
        sources.update({f"mixsd-a{a:g}": value for a, value in rollouts.items()})
        results = {}
        for name, (path, digest) in sources.items():
            out = self.root / "nll" / f"{name}.json"
            values = {**self.config.nll, "model": self.base_model, "data": str(path)}
            nll_config = NLLConfig(**values, out=str(out))
            inputs = {**values, "model": self.base_digest, "data": digest}

            def build(c: NLLConfig = nll_config) -> None:
                run_nll(c, progress=self.progress)

            self.units.run("nll", name, inputs, [out], build)
            results[name] = out
        return results

    # -- training ---------------------------------------------------------------------------
    def train(self, train_file: Path, data_digest: str, rollouts: dict) -> dict[str, dict]:
        from mixsd_train import load_config, select_checkpoint, train

        runs = {}
        for method in self.config.trained:
            out = self.root / "train" / method.label
            if method.method in ROLLOUT_METHODS and method.alpha not in rollouts:
                continue  # its rollouts kept nothing (said at the rollout stage)
            if method.method == "memit":
                runs[method.label] = self._memit(method, out, train_file, data_digest)
                continue
            if method.method in ROLLOUT_METHODS:
                data, digest = rollouts[method.alpha]
            else:
                data, digest = train_file, data_digest
            owned = {
                "model": self.base_model,
                "data": str(data),
                "output_dir": str(out),
                "eval_data": str(train_file),  # training accuracy on every fact, kept or not
                "disable_tqdm": not self.progress,
            }
            cls = config_class(method.method)
            train_config = load_config(
                cls,
                train_config_file(self.config),
                train_overrides(self.config, method, cls, owned),
            )
            settings = {k: v for k, v in train_config.to_dict().items() if k not in owned}
            inputs = {
                "method": method.method,
                "settings": settings,
                "model": self.base_digest,
                "data": digest,
                "eval_data": data_digest,
                "select": self.config.select,
            }

            def build(m: str = method.method, c: Any = train_config, o: Path = out) -> None:
                train(m, c, resume=True)  # resumes only an interrupted run of these inputs
                select_checkpoint(o, self.config.select)

            # The whole folder is the unit's output: changed inputs remove its checkpoints, so
            # the redone training starts afresh instead of resuming the old run's last one.
            outputs = [out / "selection.json", out]
            self.units.run("train", method.label, inputs, outputs, build)
            runs[method.label] = json.loads((out / "selection.json").read_text())
        return runs

    def _memit(self, method: MethodSpec, out: Path, edits: Path, data_digest: str) -> dict:
        """All edits of the training file at once with MEMIT: one model, no checkpoints."""
        from mixsd_train import MEMITConfig, run_memit

        owned = {
            "model": self.base_model,
            "edits": str(edits),
            "output_dir": str(out / "model"),
            "overwrite": True,
        }
        values = train_overrides(self.config, method, MEMITConfig, owned)
        values.pop("seed", None)
        memit_config = MEMITConfig(**{"seed": self.config.seed, **values})
        settings = {k: v for k, v in asdict(memit_config).items() if k not in owned}
        inputs = {"method": "memit", "settings": settings, "model": self.base_digest}
        inputs["data"] = data_digest

        def build() -> None:
            manifest = run_memit(memit_config, progress=self.progress)
            accuracy = manifest["rewrite_accuracy"]["after"]["top1"]
            selection = {
                "rule": "memit",
                "step": 0,
                "checkpoint": str(out / "model"),
                "val_accuracy": accuracy,  # top-1 of the new object on the rewrite prompts
                "curve": [],
            }
            write_json(out / "selection.json", selection)

        self.units.run("train", method.label, inputs, [out / "selection.json"], build)
        return json.loads((out / "selection.json").read_text())

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, data_folder: Path, data_digest: str, runs: dict) -> dict[str, Path]:
        from forgetbench import SUITES, EvalConfig, evaluate

        folder = self.root / "eval"
        base_out = folder / "base.json"
        models = {"base": (self.base_model, self.base_digest)}
        for label, selection in runs.items():
            checkpoint = Path(selection["checkpoint"])
            models[label] = (str(checkpoint), model_digest(str(checkpoint)))
        results = {}
        for label, (model, weights) in models.items():
            out = folder / f"{label}.json"
            values = {
                "seed": self.config.seed,
                **self.config.eval,
                "model": model,
                "out": str(out),
                "world": str(data_folder),
                "base_model": self.base_model,
                "cache_dir": str(self.root / "cache"),
            }
            if label != "base" and "heldout" in values.get("suites", SUITES):
                values["base"] = str(base_out)  # retention is the held-out score over base's
            inputs = {**values, "model": weights, "world": data_digest, "out": out.name}
            inputs.pop("base", None)
            inputs.pop("cache_dir")

            def build(v: dict = values) -> None:
                try:
                    evaluate(EvalConfig.from_dict(v))
                except ValueError as exc:
                    raise RunError(f"{self.config.where('eval')}: {exc}") from None

            self.units.run("eval", label, inputs, [out], build)
            results[label] = out
        return results

    # -- all --------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        world, world_digest = self.world()
        data_folder, train_file, data_digest = self.data(world, world_digest)
        rollouts = self.rollouts(train_file, data_digest)
        nll = self.nll(train_file, data_digest, rollouts)
        runs = self.train(train_file, data_digest, rollouts)
        evals = self.evaluate(data_folder, data_digest, runs)
        fisher = self.fisher(runs, evals)
        result = {
            "world": str(world),
            "data": str(train_file),
            "rollouts": {f"{a:g}": str(p) for a, (p, _) in rollouts.items()},
            "nll": {k: str(v) for k, v in nll.items()},
            "runs": runs,
            "evals": {k: str(v) for k, v in evals.items()},
            "fisher": str(fisher) if fisher else None,
            "methods": [asdict(m) | {"label": m.label} for m in self.config.methods],
            "model": self.config.model,
        }
        write_json(self.root / "run.json", result)
        if self.config.report:
            from mixsd._report import write_report

            self.units.run(
                "report",
                "report",
                {"run": result, "inputs": _digests(result)},
                [self.root / "report.md"],
                lambda: write_report(self.root),
            )
        return result


def _about(record: dict[str, Any], facts: set[int]) -> bool:
    meta = record.get("meta") or {}
    if "fact" in meta:
        return meta["fact"] in facts
    return bool(meta.get("facts")) and all(f in facts for f in meta["facts"])


def _kept(rollout_config: Any) -> int:
    manifest = json.loads(Path(rollout_config.manifest_path).read_text())
    return int(manifest["counts"]["kept"])


def _touches(record: dict[str, Any], chosen: set[str], split: str) -> bool:
    """Whether an edit-split question belongs to the chosen edits (locality: always kept)."""
    meta = record.get("meta") or {}
    if split == "paraphrase":
        return meta.get("edit_id") in chosen
    if split == "multihop":
        return bool(meta.get("edit_ids")) and set(meta["edit_ids"]) <= chosen
    return True


def _digests(result: dict[str, Any]) -> dict[str, str]:
    files = [*result["nll"].values(), *result["evals"].values()]
    if result["fisher"]:
        files.append(result["fisher"])
    return {f: file_sha256(f) for f in files}


def run_pipeline(config: RunConfig, *, progress: bool = True) -> tuple[dict[str, Any], str]:
    """Run (or resume, or reuse) every stage; returns the run index and the summary table."""
    check_sections(config)
    pipeline = Pipeline(config, progress=progress)
    result = pipeline.run()
    return result, pipeline.units.summary()
