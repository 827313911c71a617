"""Held-out capability through lm-eval: the task registry and the runner around
``lm_eval.simple_evaluate``.

The tasks themselves are the YAML files in ``forgetbench/tasks/`` (usable straight from
``lm_eval --include_path``); this module only decides which can run here (data present, code
execution allowed), calls lm-eval on an already-loaded model, and turns its logged samples into
per-sample records with the error taxonomy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgetbench._data import get_benchmark, resolve_data_file
from forgetbench._protocol import HeldoutProtocol, decoding_record, resolve_protocol
from forgetbench._sandbox import ALLOW_ENV
from forgetbench._scoring import score_math, score_mmlu
from forgetbench._taxonomy import TaxonomyConfig, classify, tally
from mixsd_base import Registry

__all__ = ["HELDOUT_TASKS", "HeldoutTask", "run_heldout", "tasks_dir"]


@dataclass(frozen=True)
class HeldoutTask:
    """One lm-eval task of ours: its benchmark, headline metric, and how it is prompted."""

    benchmark: str
    metric: str
    prompt_field: str = "prompt"  # the doc field holding the user turn (for the taxonomy)
    chat: bool = True  # generated through the chat template (loglikelihood MMLU is not)
    generative: bool = True  # has text replies to classify
    # The score of guessing: a task scores "signal" only clearly above it (4 choices: 0.25).
    chance: float = 0.0


HELDOUT_TASKS: Registry[HeldoutTask] = Registry(
    "held-out task",
    {
        "fb_aime24": HeldoutTask("aime24", "exact_match"),
        "fb_aime24_paper": HeldoutTask("aime24", "exact_match"),
        "fb_math500": HeldoutTask("math500", "exact_match"),
        "fb_gsm8k": HeldoutTask("gsm8k", "exact_match"),
        "fb_gsm8k100": HeldoutTask("gsm8k-100", "exact_match"),
        "fb_humaneval": HeldoutTask("humaneval", "pass@1", prompt_field="chat_prompt"),
        "fb_mmlu": HeldoutTask("mmlu", "acc", chance=0.25),
        "fb_mmlu_ll": HeldoutTask(
            "mmlu", "acc", prompt_field="prompt_ll", chat=False, generative=False, chance=0.25
        ),
    },
)


def tasks_dir() -> Path:
    """The folder to pass to ``lm_eval --include_path``."""
    return Path(__file__).parent / "tasks"


# Per-sample correctness for the taxonomy of several samples (the task scores their mean).
_REPLY_SCORERS = {"math": score_math, "mcq": score_mmlu}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _samples(
    name: str,
    task: HeldoutTask,
    logged: list[dict[str, Any]],
    entities: list[str],
    tax: TaxonomyConfig,
) -> list[dict[str, Any]]:
    kind = get_benchmark(task.benchmark).kind
    out = []
    for sample in logged:
        doc = sample["doc"]
        score = float(sample.get(task.metric, 0.0))
        record: dict[str, Any] = {
            "task": name,
            "id": doc.get("id"),
            "target": sample.get("target"),
            task.metric: score,
        }
        if task.generative:
            # One request per item, holding every sample (repeats) the model drew for it.
            replies = [r for resps in sample["resps"] for r in _as_list(resps)]
            record["replies"] = replies
            prompt = str(doc.get(task.prompt_field, ""))
            if len(replies) > 1 and kind in _REPLY_SCORERS:
                # Several samples (AIME under the paper protocol): as in the authors' error
                # analysis, every wrong sample is a row of its own.
                right = _REPLY_SCORERS[kind]
                record["errors"] = [
                    classify(r, prompt, kind, entities, tax)
                    for r in replies
                    if not right(r, doc["answer"])
                ]
            elif score == 0.0:  # one sample (or code, not run twice): a wrong item, by reply 1
                record["error"] = classify(replies[0], prompt, kind, entities, tax)
        out.append(record)
    return out


def loglikelihood_rows(model: Any, batch_size: int) -> int:
    """Rows per log-likelihood forward pass: ``batch_size`` on an accelerator, 1 on CPU. lm-eval
    takes the log-softmax of every position's logits: a 5-shot MMLU row runs to ~2,500 tokens,
    and 16 of them over a 152k vocabulary need ~24 GB in fp32, more than a 24 GB machine has
    (measured: the kernel killed such a run), while CPU throughput barely gains from batching."""
    device = getattr(model, "device", None)
    return batch_size if device is not None and device.type != "cpu" else 1


def run_heldout(
    model: Any,
    tokenizer: Any,
    tasks: Iterable[str],
    *,
    limit: int | None = None,
    batch_size: int = 8,
    loglikelihood_batch_size: int | None = None,
    max_new_tokens: int = 512,
    allow_code_exec: bool = False,
    protocol: str | HeldoutProtocol = "greedy",
    data_dir: str | Path | None = None,
    entities: list[str] | None = None,
    taxonomy: TaxonomyConfig | None = None,
    seed: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]]:
    """Run the held-out ``tasks`` on a loaded model with lm-eval.

    ``protocol``: a name (``greedy``, ``paper``, ``sampled``; resolved for ``model`` with the
    default temperature and samples) or a resolved ``HeldoutProtocol`` (see ``_protocol``).
    Returns ``(scores by task, per-sample records, data files used by benchmark)``; each task's
    score entry carries its ``decoding`` (do_sample, temperature, samples, max_new_tokens, ...).
    A task whose data is missing, or HumanEval without ``allow_code_exec``, is reported as skipped.
    Log-likelihood tasks (MMLU-LL) score ``loglikelihood_batch_size`` rows per forward pass
    (None: :func:`loglikelihood_rows`).
    """
    if isinstance(protocol, str):
        protocol = resolve_protocol(protocol, model)
    scores: dict[str, Any] = {}
    files: dict[str, str] = {}
    runnable: dict[bool, list[str]] = {True: [], False: []}
    for name in tasks:
        task = HELDOUT_TASKS.get_or_fail(name, field="tasks")
        file = resolve_data_file(task.benchmark, folder=data_dir)
        if file is None:
            scores[name] = {"skipped": f"no data for {task.benchmark} (forgetbench data list)"}
        elif task.benchmark == "humaneval" and not allow_code_exec:
            scores[name] = {"skipped": "executes generated code: pass --allow-code-exec"}
        else:
            files[task.benchmark] = str(file)
            runnable[task.chat].append(name)
    if not runnable[True] and not runnable[False]:
        return scores, [], files

    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    # Thinking off, as everywhere else in the project (mixsd_core.render_chat): HFLM renders the
    # chat itself and passes this switch to the template. Hybrid templates (Qwen3) then close an
    # empty <think> block in the prompt; every other template ignores the variable.
    lms = {
        True: HFLM(
            pretrained=model, tokenizer=tokenizer, batch_size=batch_size, enable_thinking=False
        )
    }
    if runnable[False]:
        rows = loglikelihood_batch_size or loglikelihood_rows(model, batch_size)
        lms[False] = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=rows)
    metadata = {"data_dir": str(data_dir)} if data_dir is not None else None
    # include_defaults=False: indexing lm-eval's thousands of built-in YAML files takes ~30 s.
    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata=metadata)
    # The protocol's decoding goes onto each task object (lm-eval's gen_kwargs would give every
    # task the same); the record is read back from the task, so it says what ran.
    loaded = manager.load([*runnable[True], *runnable[False]])["tasks"]
    decoding: dict[str, dict[str, Any]] = {}
    for name, task_obj in loaded.items():
        if task_obj.config.output_type == "generate_until":
            gen_kwargs, repeats = protocol.overrides(name, max_new_tokens)
            task_obj.set_config("generation_kwargs", gen_kwargs, update=True)
            if repeats is not None:
                task_obj.set_config("repeats", repeats)
        decoding[name] = decoding_record(task_obj)
    samples: list[dict[str, Any]] = []
    previous = os.environ.get(ALLOW_ENV)
    if allow_code_exec:  # the task's process_results reads the consent from the environment
        os.environ[ALLOW_ENV] = "1"
    try:
        for chat, names in runnable.items():
            if not names:
                continue
            out = simple_evaluate(
                model=lms[chat],
                tasks=[loaded[name] for name in names],
                limit=limit,
                apply_chat_template=chat,
                log_samples=True,
                task_manager=manager,
                confirm_run_unsafe_code=allow_code_exec,
                random_seed=seed,
                numpy_random_seed=seed,
                torch_random_seed=seed,
                bootstrap_iters=1000,
            )
            for name in names:
                task = HELDOUT_TASKS.get_or_fail(name, field="tasks")
                result = out["results"][name]
                stderr = result.get(f"{task.metric}_stderr,none")
                logged = _samples(
                    name, task, out["samples"][name], entities or [], taxonomy or TaxonomyConfig()
                )
                errors = [e for s in logged for e in s.get("errors", [s.get("error")]) if e]
                scores[name] = {
                    "benchmark": task.benchmark,
                    "metric": task.metric,
                    "score": float(result[f"{task.metric},none"]),
                    "stderr": float(stderr) if isinstance(stderr, int | float) else None,
                    "n": len(logged),
                    "taxonomy": tally(errors) if task.generative else None,
                    "decoding": decoding[name],
                }
                samples.extend(logged)
    finally:
        if previous is None:
            os.environ.pop(ALLOW_ENV, None)
        else:
            os.environ[ALLOW_ENV] = previous
    return scores, samples, files
