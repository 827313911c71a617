"""The rollout stage (``mixsd rollout``): records in, verified mixed targets out, resumable.

Input order is split into fixed chunks of ``batch_size * chunk_batches`` examples. Each chunk is
one pool of ``decode_with_retries`` (``_retry``): decoded in batches, verified, its failed rows
redrawn together. The decoder is ``mixed_rollout`` (``_rollout``; ``sampled_mixed_rollout`` when
``temperature > 0``) or its vLLM twin; both see the same masks. A chunk's batches depend only on
the chunk, so an interrupted and resumed run computes exactly what an uninterrupted one does.
Files (partial chunks, output, manifest) are ``_rollout_io``'s.

With adaptive mixing, repair or ``trace`` (``config.traced``) the greedy decoder is
``traced_mixed_rollout`` (or ``vllm_traced_rollout``): each record then also stores its trace
(``mixing``, ``sides``, ``signals``, ``naive_share``; with repair ``draw`` and ``repairs``), and
``mask`` holds the decision taken at each position. A bernoulli rollout without them keeps
today's decoder and bytes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from mixsd_base import file_sha256
from mixsd_core._masks import stable_seed
from mixsd_core._prompts import PromptConfig, detect_task, render_prompts
from mixsd_core._retry import Attempt, Outcome, decode_with_retries
from mixsd_core._rollout_config import AUTO_VERIFIERS, RolloutConfig, RolloutError
from mixsd_core._rollout_io import (
    DROPPED_ENDING,
    Entry,
    append_entries,
    fingerprint,
    model_name,
    rank_partial_path,
    read_records,
    resume_state,
    start_partial,
    write_output,
)
from mixsd_core._rollout_policy import (
    AnswerCheck,
    MixedRow,
    answer_variants,
    ending_token_ids,
    repair_position,
)
from mixsd_core._stop_tokens import stop_token_ids

__all__ = ["load_rollout_model", "run_rollout"]

_SHARED_FIELDS = ("id", "prompt", "target", "answer", "context", "split", "meta")

Verifier = Callable[[str, str], bool]  # (reply, answer) -> passes
RecordDecoder = Callable[[list[Attempt]], list[dict[str, Any]]]  # one output record per attempt
RecordVerifier = Callable[[Attempt, dict[str, Any]], bool]


def run_rollout(
    config: RolloutConfig,
    *,
    model: Any = None,
    tokenizer: Any = None,
    verifier: Verifier | None = None,
    on_record: Callable[[Entry], None] | None = None,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Run (or resume, or find complete) a rollout and return its manifest.

    ``model``/``tokenizer`` skip loading ``config.model``; ``verifier`` (``(reply, answer) ->
    bool``) replaces the named one; ``on_record`` sees each finished entry once it is safely in
    the partial file (raising there interrupts the run, as a crash would). With
    ``config.data_parallel_size`` > 1 the work goes to that many engine processes
    (``_rollout_parallel``); ``shard=(rank, world)`` is one of them: it decodes chunks
    ``rank, rank + world, ...`` into its own partial file and returns ``{}``.
    """
    from tqdm.auto import tqdm

    if config.data_parallel_size > 1 and shard is None:
        if model is not None or verifier is not None or on_record is not None:
            raise RolloutError(
                "data_parallel_size > 1 loads the model in each engine process: pass no model, "
                "verifier or on_record"
            )
        from mixsd_core._rollout_parallel import run_data_parallel

        return run_data_parallel(config, progress=progress)
    records, run_fingerprint, chunks, done = rollout_plan(config)
    if done is None:  # already complete: nothing to do
        return json.loads(config.manifest_path.read_text())
    rank, world = shard or (0, 1)
    todo = [c for k, c in enumerate(chunks) if k % world == rank and c[0] not in done]
    if shard is not None and not todo:
        return {}  # this engine has no share left: no model to load

    if model is None or tokenizer is None:
        model, tokenizer = load_rollout_model(config)
    if config.backend == "hf":
        model.eval()
    targets = _Targets(config, model, tokenizer, records, verifier)
    partial_path = config.partial_path
    if shard is None:
        start_partial(config, run_fingerprint, done)
        desc = "rollout"
    else:
        partial_path = rank_partial_path(config, rank)
        start_partial(config, run_fingerprint, {}, path=partial_path, model=model_name(model))
        desc = f"rollout {rank + 1}/{world}"
    bar = tqdm(
        total=sum(map(len, todo)) if shard else len(records),
        initial=0 if shard else len(done),
        desc=desc,
        unit="ex",
        disable=not progress,
    )
    with partial_path.open("a", encoding="utf-8") as partial, bar:
        for chunk in todo:
            decode, verify = targets.for_chunk(chunk)
            outcomes = decode_with_retries(
                [records[i]["id"] for i in chunk],
                decode,
                None if config.no_verify else verify,
                alpha=config.alpha,
                seed=config.seed,
                mask_length=config.max_new_tokens,
                max_retries=config.max_retries,
                # vLLM schedules its own batches: give it the whole round at once.
                batch_size=len(chunk) if config.backend == "vllm" else config.batch_size,
                greedy=config.temperature == 0,
                mask_matters=config.mixing_policy.uses_mask,
                repair=targets.repair_for(chunk) if config.repair else None,
                repair_limit=config.repair,
                parallel_redraws=config.parallel_redraws,
                on_round=bar.update,
            )
            entries = [_entry(i, outcome) for i, outcome in zip(chunk, outcomes, strict=True)]
            append_entries(partial, entries)
            for entry in entries:
                done[entry["index"]] = entry
                if on_record is not None:
                    on_record(entry)
    if shard is not None:
        return {}  # the engine's share is in its partial file: the parent writes the output
    return write_output(config, run_fingerprint, model_name(model), targets.verifier_names, done)


class RolloutPlan(NamedTuple):
    """What a run starts from: the records, the run's fingerprint, the fixed chunks of input
    order (``batch_size * chunk_batches`` examples each: the unit of resumption, and of the
    work one data-parallel engine takes), and the entries finished before (None: the output
    is complete)."""

    records: list[dict[str, Any]]
    fingerprint: dict[str, Any]
    chunks: list[range]
    done: dict[int, Entry] | None


def rollout_plan(config: RolloutConfig) -> RolloutPlan:
    """Read the records and the earlier run's state; refuses another run's files before any
    model is loaded or file written."""
    records = read_records(config.data, need_answer=not config.no_verify)[: config.limit]
    run_fingerprint = fingerprint(config, file_sha256(config.data))
    size = config.batch_size * config.chunk_batches
    chunks = [range(i, min(i + size, len(records))) for i in range(0, len(records), size)]
    return RolloutPlan(
        records, run_fingerprint, chunks, resume_state(config, run_fingerprint, chunks)
    )


def verifier_names(
    config: RolloutConfig, records: Sequence[dict[str, Any]], verifier: Verifier | None = None
) -> dict[str, str]:
    """The verifier used per task type, by name, as the manifest records it."""
    if config.no_verify:
        return {}
    tasks = sorted({detect_task(r, config.task) for r in records})
    if verifier is not None:
        return dict.fromkeys(tasks, f"custom:{getattr(verifier, '__name__', 'callable')}")
    return {t: AUTO_VERIFIERS[t] if config.verifier == "auto" else config.verifier for t in tasks}


def _entry(index: int, outcome: Outcome[dict[str, Any]]) -> Entry:
    if not outcome.kept:
        last = outcome.output  # what the last attempt wrote: why the example was dropped
        return {
            "index": index,
            "kept": False,
            "attempts": outcome.attempt.attempt + 1,
            "id": last["id"],
            "finish_reason": last["finish_reason"],
            "ending": last["target"][-DROPPED_ENDING:],
        }
    record = outcome.output
    if outcome.verified:
        record["verified"] = True
    return {"index": index, "kept": True, "record": record}


def load_rollout_model(config: RolloutConfig) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for ``config.model`` on the config's backend, dtype and devices."""
    if config.backend == "vllm":
        from mixsd_core._rollout_vllm import load_vllm_model

        return load_vllm_model(
            config.model,
            dtype=config.dtype,
            seed=config.seed,
            tensor_parallel_size=config.tensor_parallel_size,
            gpu_memory_utilization=config.gpu_memory_utilization,
        )
    from mixsd_core._models import load_model

    return load_model(config.model, dtype=config.dtype, device=config.device)


class _Targets:
    """What turns attempts into output records for one run: prompts, decoder, verifiers."""

    def __init__(
        self,
        config: RolloutConfig,
        model: Any,
        tokenizer: Any,
        records: list[dict[str, Any]],
        verifier: Verifier | None,
    ) -> None:
        import kgworld

        self.config, self.model, self.tokenizer, self.records = config, model, tokenizer, records
        self.stops = stop_token_ids(model, tokenizer)
        self.prompt_config = PromptConfig(style=config.prompt_style, task=config.task)
        self.tasks = [detect_task(r, config.task) for r in records]
        self.verifier_names = verifier_names(config, records, verifier)
        self.verifiers = {
            task: verifier or kgworld.get_verifier(name)
            for task, name in self.verifier_names.items()
        }
        # Guard's and repair's sentence ends; each traced attempt's row until it is verified.
        needs_ends = config.mixing_policy.reads_answer or config.repair > 0
        self.ending_ids = ending_token_ids(tokenizer, self.stops) if needs_ends else frozenset()
        self.rows: dict[tuple[int, int], MixedRow] = {}  # (index, attempt) -> row

    def for_chunk(self, chunk: range) -> tuple[RecordDecoder, RecordVerifier]:
        """``(decode, verify)`` for ``decode_with_retries`` on one chunk (attempt indices count
        from the chunk's start): decode gives one output record per attempt."""
        import kgworld

        prompts = {
            i: render_prompts(self.tokenizer, self.records[i], self.prompt_config) for i in chunk
        }
        self.rows.clear()  # the previous chunk's rows are finished

        def decode(attempts: list[Attempt]) -> list[dict[str, Any]]:
            rows = [chunk[a.index] for a in attempts]
            outputs = self._decode([prompts[i] for i in rows], attempts, rows)
            records = []
            for i, output, a in zip(rows, outputs, attempts, strict=True):
                if isinstance(output, MixedRow):
                    self.rows[(a.index, a.attempt)] = output  # for repair
                records.append(self._record(i, output, a, prompts[i]))
            return records

        def verify(attempt: Attempt, record: dict[str, Any]) -> bool:
            source = self.records[chunk[attempt.index]]
            return kgworld.verify_record(record["target"], source, self.verifiers[record["task"]])

        return decode, verify

    def repair_for(self, chunk: range) -> Callable[[Attempt, Any], tuple[int, MixedRow] | None]:
        """Repair's choice for a failed attempt of this chunk: ``(flip position, kept prefix)``."""

        def repair(attempt: Attempt, record: Any) -> tuple[int, MixedRow] | None:
            row = self.rows.pop((attempt.index, attempt.attempt))
            position = repair_position(row, self._answers(chunk[attempt.index]), self.ending_ids)
            return None if position is None else (position, row.prefix(position))

        return repair

    def _answer_check(self, i: int) -> AnswerCheck | None:
        """The answer terms' "stated" for record i: its verifier passes the text so far (None
        when no policy term reads it, or without verification)."""
        if not self.config.mixing_policy.reads_answer or self.config.no_verify:
            return None
        import kgworld

        source, verifier = self.records[i], self.verifiers[self.tasks[i]]
        return lambda ids: kgworld.verify_record(self._text(ids), source, verifier)

    def _text(self, ids: list[int]) -> str:
        """A target's text: it stops before the end token (target_ids keep it)."""
        ended = bool(ids) and ids[-1] in self.stops
        return self.tokenizer.decode(ids[:-1] if ended else ids, skip_special_tokens=False)

    def _answers(self, i: int) -> list[list[int]]:
        answer = self.records[i].get("answer")
        return answer_variants(self.tokenizer, answer) if answer else []

    def _decode(
        self, prompts: list[tuple[str, str]], attempts: Sequence[Attempt], rows: list[int]
    ) -> Sequence[list[int] | MixedRow]:
        config = self.config
        naive = [p[0] for p in prompts]
        expert = [p[1] for p in prompts]
        masks = [a.mask for a in attempts]
        if config.traced:
            traced_decode: Callable[..., list[MixedRow]]
            if config.backend == "vllm":
                from mixsd_core._rollout_vllm import vllm_traced_rollout

                traced_decode = vllm_traced_rollout
            else:
                from mixsd_core._rollout import traced_mixed_rollout

                traced_decode = traced_mixed_rollout
            return traced_decode(
                self.model,
                self.tokenizer,
                naive,
                expert,
                masks,
                max_new_tokens=config.max_new_tokens,
                eos_token_ids=self.stops,
                mixing=config.mixing_policy,
                answer_ids=[self._answers(i) for i in rows],
                ending_ids=self.ending_ids,
                forced=[a.forced for a in attempts],
                prefixes=[a.resume for a in attempts],
                answer_checks=[self._answer_check(i) for i in rows],
            )
        decode: Callable[..., list[list[int]]]
        if config.backend == "vllm":
            from mixsd_core._rollout_vllm import vllm_mixed_rollout

            decode = vllm_mixed_rollout
        elif config.temperature > 0:
            from mixsd_core._sampling import sampled_mixed_rollout

            decode = functools.partial(
                sampled_mixed_rollout,
                temperature=config.temperature,
                top_p=config.top_p,
                # The same (seed, example, attempt) as the mask: a row's draws are its own.
                seeds=[stable_seed(config.seed, a.example_id, a.attempt) for a in attempts],
            )
        else:
            from mixsd_core._rollout import mixed_rollout

            decode = mixed_rollout
        return decode(
            self.model,
            self.tokenizer,
            naive,
            expert,
            masks,
            max_new_tokens=config.max_new_tokens,
            eos_token_ids=self.stops,
        )

    def _record(
        self, i: int, output: list[int] | MixedRow, attempt: Attempt, prompts: tuple[str, str]
    ) -> dict[str, Any]:
        ids = output.tokens if isinstance(output, MixedRow) else output
        ended = bool(ids) and ids[-1] in self.stops
        source = self.records[i]
        record = {k: source.get(k) for k in _SHARED_FIELDS}
        record.update(
            target=self._text(ids),
            gold_target=source["target"],
            target_ids=ids,
            mask=attempt.mask[: len(ids)],
            naive_prompt=prompts[0],
            expert_prompt=prompts[1],
            alpha=self.config.alpha,
            seed=self.config.seed,
            attempt=attempt.attempt,
            verified=None,
            finish_reason="eos" if ended else "length",
            task=self.tasks[i],
        )
        if isinstance(output, MixedRow):
            record.update(
                mask=output.takes_naive,  # the decision taken, not the drawn bit
                mixing=self.config.mixing,
                **({"answer_guard": True} if self.config.answer_guard else {}),
                sides=output.sides,
                # [position, lpE(e) - lpE(n), lpN(n) - lpN(e), lpE(e) - lpN(e)], 2 decimals
                signals=[[int(s[0]), *(round(v, 2) for v in s[1:])] for s in output.signals],
                naive_share=output.naive_share,
            )
            if self.config.repair:
                record.update(draw=attempt.draw, repairs=list(attempt.forced))
        return record
