"""``EvalConfig``: every setting of one ``forgetbench eval`` run (defaults < YAML < CLI).

Loading (YAML with line numbers, ``--set``, unknown keys, did-you-mean) is mixsd_base's
``load_config`` / ``build_config``; this module only declares the fields and checks values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forgetbench._errors import EvalError
from forgetbench._heldout import HELDOUT_TASKS
from forgetbench._indomain import INDOMAIN_SCORERS
from forgetbench._protocol import PAPER_SAMPLES, PROTOCOLS
from forgetbench._suites import SUITES
from mixsd_base import build_config, check_fields, option

__all__ = ["DEFAULT_SUITES", "DEFAULT_TASKS", "SUITES", "EvalConfig", "comma_list"]

# The edit suite is opt-in: only worlds with an edit/ split (or MQuAKE imports) can run it.
DEFAULT_SUITES = ("heldout", "indomain", "refloss")
DEFAULT_TASKS = ("fb_aime24", "fb_math500", "fb_gsm8k", "fb_gsm8k100", "fb_humaneval", "fb_mmlu")


def _verifier_names() -> tuple[str, ...]:
    import kgworld

    return tuple(kgworld.VERIFIERS)


def comma_list(value: Any) -> Any:
    """``"a,b"`` or ``["a,b", "c"]`` -> ``["a", "b", "c"]``: the comma lists ``--suites`` and
    ``--tasks`` have always taken, accepted wherever a list is (flag, ``--set``, YAML)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        return value  # not strings: the loader's type check reports it
    return [part.strip() for item in items for part in item.split(",") if part.strip()]


def _comma_list_field(default: tuple[str, ...], help: str) -> Any:
    """A list of names that also takes comma lists (see :func:`comma_list`)."""
    return field(
        default_factory=lambda: list(default),
        metadata={"help": f"{help}; repeatable or comma-separated", "coerce": comma_list},
    )


@dataclass
class EvalConfig:
    """One evaluation of one model; saved, resolved, in the output's manifest."""

    model: str = field(
        metadata={"help": "model to evaluate: registry name, folder, .gguf or hub id"}
    )
    out: str = field(
        metadata={"help": "output JSON (per-sample records go beside it, .samples.jsonl)"}
    )
    suites: list[str] = _comma_list_field(  # noqa: RUF009 (it returns a field())
        DEFAULT_SUITES, "which suites to run: heldout, indomain, refloss (default), edit"
    )
    tasks: list[str] = _comma_list_field(  # noqa: RUF009
        DEFAULT_TASKS, "held-out lm-eval tasks (those without data here are reported skipped)"
    )
    world: str | None = option(None, "kgworld folder: in-domain splits and the leakage whitelist")
    edits: str | None = option(
        None,
        "edit suite: a folder holding edit/ (world or kgworld import-mquake output) "
        "or that edit/ folder; default --world",
    )
    limit: int | None = option(
        None, "at most this many examples per task / split (quick runs)", min=1
    )
    heldout_limit: int | None = option(
        None,
        "held-out tasks only: at most this many questions each (null: limit); e.g. enough MMLU "
        "questions for a standard error of a few points beside a small in-domain limit",
        min=1,
    )
    base: str | None = option(None, "the base model's eval JSON: retention = score / base x 100")
    base_model: str = option("default", "the base model whose responses define L_ref")
    allow_code_exec: bool = option(
        False, "run generated HumanEval code (else HumanEval is skipped)"
    )
    protocol: str = option(
        "greedy",
        "held-out decoding: greedy (1 sample, deterministic); paper (FACTS §5: Llama models "
        "greedy, every other (Qwen) sampled at `temperature` with `samples` per task; MMLU at "
        "most 1024 new tokens); sampled (paper's sampled decoding for any model)",
        choices=PROTOCOLS,
    )
    temperature: float = option(
        1.0, "held-out sampling temperature when the protocol samples", interval="(0, inf)"
    )
    samples: dict[str, int] = field(
        default_factory=lambda: dict(PAPER_SAMPLES),
        metadata={
            "help": "held-out samples per task when the protocol samples, scored as their mean "
            "(unlisted tasks: their YAML's, 1); --set samples.TASK=N"
        },
    )
    max_new_tokens: int = option(
        512, "held-out generation budget (the paper: 16384, MMLU 1024)", min=1
    )
    indomain_max_new_tokens: int = option(
        256, "in-domain generation budget (the paper: 4096)", min=1
    )
    indomain_scorer: str = option(
        "ours",
        "in-domain verifiers: ours (KGFact boxed-or-final-sentence, KGFunc integer, QA "
        "qa-normalized); paper (FACTS §5, the authors' scorer: KGFact extract-loose, KGFunc "
        "extract-strict, QA qa-paper)",
        choices=tuple(INDOMAIN_SCORERS),
    )
    qa_verifier: str | None = option(
        None,
        "verifier of the question-answer splits (qa/train, qa/validation): null = the in-domain "
        "scorer's (ours: qa-normalized; paper: qa-paper), or a kgworld verifier name (e.g. the "
        "one training validated with, train.eval_verifier)",
        choices=_verifier_names,  # read when checked: imports kgworld
    )
    batch_size: int = option(8, "rows per forward pass", min=1)
    loglikelihood_batch_size: int | None = option(
        None,
        "rows per forward pass of log-likelihood tasks (fb_mmlu_ll); null: batch_size on a "
        "GPU, 1 on CPU, where 16 long 5-shot rows' logits overflow 24 GB",
        min=1,
    )
    ref_prompts: int = option(200, "size of the reference-loss prompt set", min=1)
    ref_prompts_file: str | None = option(
        None, "JSONL of {prompt} rows replacing the default reference set"
    )
    ref_max_new_tokens: int = option(256, "length cap of the base model's reference responses")
    data_dir: str | None = option(
        None, "user / fetched benchmark files (default $FORGETBENCH_DATA)"
    )
    cache_dir: str = option("~/.cache/forgetbench", "cache for reference responses")
    device: str | None = option(None, "cpu / cuda (default: cuda if any)")
    dtype: str | None = option(None, "float32 / bfloat16 (default by device)")
    seed: int = option(0, "seed for sampled decoding and lm-eval")
    collapse_max_chars: int = option(
        80, "taxonomy: collapse if at most this many characters remain"
    )
    collapse_max_newlines: int = option(
        4, "taxonomy: collapse if at most this many newlines remain"
    )
    leakage_min_chars: int = option(4, "taxonomy: shortest world entity name counted as leakage")

    def __post_init__(self) -> None:
        bad = [s for s in self.suites if s not in SUITES]
        if bad or not self.suites:
            raise EvalError(
                f"unknown suite(s) {bad}; choose from {', '.join(SUITES)}", field="suites"
            )
        for task in self.tasks:  # before any model is loaded
            HELDOUT_TASKS.get_or_fail(task, field="tasks")
        for task, count in self.samples.items():
            HELDOUT_TASKS.get_or_fail(task, field=f"samples.{task}")
            if count < 1:
                raise EvalError(f"must be >= 1, got {count}", field=f"samples.{task}")
        if "indomain" in self.suites and self.world is None:
            raise EvalError("the indomain suite needs --world (a kgworld folder)", field="world")
        if "edit" in self.suites and self.world is None and self.edits is None:
            raise EvalError(
                "the edit suite needs --world or --edits (a folder holding edit/)", field="edits"
            )
        check_fields(self, error=EvalError)
        if not self.out.endswith(".json"):
            raise EvalError(f"must name a .json file, got {self.out!r}", field="out")
        for name in ("world", "edits", "base", "ref_prompts_file"):
            value = getattr(self, name)
            if value is not None and not Path(value).expanduser().exists():
                raise EvalError(f"{Path(value).expanduser().absolute()} not found", field=name)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EvalConfig:
        """Build from a mapping (a YAML file's root, CLI overrides): mixsd_base.build_config."""
        return build_config(cls, values)
