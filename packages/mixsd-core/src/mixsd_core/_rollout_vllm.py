"""Mixed rollouts, vLLM backend: the same greedy method as ``_rollout``, one request per mask run.

At a position where the mask picks side S (1 = naive, 0 = expert) only S's greedy token is
appended, and it is exactly what S's own greedy decoding of "S prompt + shared continuation"
would produce next. So a run of k consecutive positions that pick the same side is one vLLM
request with ``max_tokens=k`` (temperature 0) on that side's prompt, and the row then switches
sides. Every active row's current request goes into one ``LLM.generate`` call, so vLLM batches
them; the number of calls is the longest row's number of runs, not its number of tokens
(alpha 0 or 1: one call, i.e. plain greedy generation). Prefix caching lets each request reuse
the KV blocks of that side's previous request, so only the other side's latest run (plus the
last partly filled block) is prefilled again.

The simplest alternative, one ``max_tokens=1`` request per row and token step, is the special
case ``max_run=1`` (kept for the CPU check's timings): as many calls as tokens, each paying
request admission and a re-prefill of the chosen side's last, partly filled KV block.

Stops: the requests stop on ``eos_token_ids`` and nothing else; a run that ends in one of them
ends the row, as in the Hugging Face backend (the stop token is kept, as ``mixed_rollout`` keeps
it). Greedy only: sampling cannot reproduce the HF backend's per-row random streams, so the
config rejects it. ``vllm`` is imported inside functions only: without it this module imports.

Adaptive mixing, repair and traces (``vllm_traced_rollout``) need both streams' greedy tokens and
log-probabilities at every position, so they go one token per step: each step sends both sides
of every active row with ``max_tokens=1`` and ``logprobs=K`` (vLLM returns the K most likely
tokens' log-probabilities and the chosen one's). A policy also reads the other side's token
(``lpE(n)``, ``lpN(e)``): when it is not among the K, vLLM only bounds it (at most the K-th
value). The decision is exact whenever it is the same at both ends of that range; otherwise the
bound is used and a warning says how many positions were so decided (never silently).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

from mixsd_core._rollout_config import RolloutError
from mixsd_core._rollout_policy import (
    BERNOULLI,
    AnswerCheck,
    MixedRow,
    Mixing,
    StepSignals,
    answer_watches,
    takes_naive,
)

__all__ = [
    "VLLMModel",
    "load_vllm_model",
    "mask_runs",
    "vllm_mixed_rollout",
    "vllm_traced_rollout",
]

logger = logging.getLogger(__name__)
# Top log-probabilities asked per token: vLLM's default max_logprobs.
TOP_LOGPROBS = 20
# Stands in for "no larger than the bound" at the far end (finite, so kappa 0 stays defined).
_FAR_BELOW = -1e9

INSTALL_HINT = (
    "the vLLM backend needs vllm: install mixsd-core[vllm] (pip install 'mixsd-core[vllm]')"
)


def mask_runs(mask: Sequence[int], *, max_run: int | None = None) -> list[tuple[int, int]]:
    """Split a 0/1 mask into ``(side, length)`` runs of equal entries, in order.

    ``max_run`` caps a run's length (``1`` gives one run per position, the per-token scheme).
    Concatenating ``[side] * length`` over the runs gives back ``mask``.
    """
    if max_run is not None and max_run < 1:
        raise ValueError(f"max_run must be >= 1, got {max_run}")
    runs: list[tuple[int, int]] = []
    for side, group in groupby(int(m) for m in mask):
        length = sum(1 for _ in group)
        step = max_run or length
        runs.extend((side, min(step, length - start)) for start in range(0, length, step))
    return runs


@dataclass
class VLLMModel:
    """A loaded ``vllm.LLM`` plus what the rollout stage reads off a Hugging Face model."""

    llm: Any
    generation_config: Any  # transformers GenerationConfig (EOS ids), or None
    name_or_path: str
    max_model_len: int


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as error:
        raise RolloutError(f"{INSTALL_HINT} ({error})") from None
    return vllm


def _model_folder(spec: str) -> str:
    """A folder (or hub id) vLLM can load, resolved as for the HF backend (``resolve_model_spec``:
    registry names are converted once, a training folder means its selected checkpoint)."""
    from mixsd_core._model_registry import ModelError
    from mixsd_core._model_spec import resolve_model_spec

    if spec.endswith(".gguf"):
        raise ModelError(
            f"{spec}: the vLLM backend loads Hugging Face folders; register the GGUF in the "
            "model registry (converted once) or convert it to a folder first"
        )
    resolved = resolve_model_spec(spec)
    if resolved.kind == "hub":
        return resolved.source  # vLLM downloads it when online
    return str(Path(resolved.source).absolute())


def _vllm_dtype(dtype: str | None) -> str:
    """vLLM's name of a dtype word; None or 'auto' is the HF backend's rule (fp32 on CPU, where
    bf16 is slow; bf16 on GPU)."""
    from mixsd_core._model_spec import parse_dtype

    return str(parse_dtype(dtype)).removeprefix("torch.")


def load_vllm_model(
    spec: str = "default",
    *,
    dtype: str | None = None,
    seed: int = 0,
    enforce_eager: bool = False,
    max_model_len: int | None = None,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float | None = None,
) -> tuple[VLLMModel, Any]:
    """``(VLLMModel, tokenizer)`` for a model spec; the tokenizer is the Hugging Face one.

    Prompts are rendered and tokenised by the same tokenizer as in the HF backend and sent to
    vLLM as token ids, so both backends see identical inputs. ``enforce_eager`` skips CUDA
    graphs / compilation (faster start, slower steps). ``tensor_parallel_size`` shards the model
    over that many GPUs (vLLM's own option); greedy tokens do not depend on it beyond vLLM's
    kernel-level float differences.
    """
    vllm = _import_vllm()
    from transformers import AutoTokenizer, GenerationConfig

    folder = _model_folder(spec)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        generation_config = GenerationConfig.from_pretrained(folder)
    except OSError:  # a folder without generation_config.json: the tokenizer's EOS is used
        generation_config = None
    llm = vllm.LLM(
        model=folder,
        tokenizer=folder,
        dtype=_vllm_dtype(dtype),
        seed=seed,
        enable_prefix_caching=True,
        # Our SamplingParams say everything: no sampling defaults from generation_config.json.
        generation_config="vllm",
        enforce_eager=enforce_eager,
        max_model_len=max_model_len,
        tensor_parallel_size=tensor_parallel_size,
        trust_remote_code=False,
        # Only when set: vLLM's own default otherwise.
        **(
            {}
            if gpu_memory_utilization is None
            else {"gpu_memory_utilization": gpu_memory_utilization}
        ),
    )
    length = int(llm.llm_engine.model_config.max_model_len)
    return VLLMModel(llm, generation_config, folder, length), tokenizer


def _stop_index(tokens: Sequence[int], stops: set[int]) -> int | None:
    return next((i for i, t in enumerate(tokens) if t in stops), None)


def vllm_mixed_rollout(
    model: VLLMModel,
    tokenizer: Any,
    naive_prompts: Sequence[str | Sequence[int]],
    expert_prompts: Sequence[str | Sequence[int]],
    masks: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_token_ids: Sequence[int],
    max_run: int | None = None,
) -> list[list[int]]:
    """Greedy mixed continuations, as ``mixed_rollout`` returns them, decoded by vLLM.

    ``masks[i][t]`` = 1 takes the naive conditional's token at step t, 0 the expert's; each mask
    needs at least ``max_new_tokens`` entries. ``max_run`` caps the tokens per request.
    """
    from mixsd_core._rollout import _check_rows, _token_ids

    _check_rows(naive_prompts, expert_prompts, masks, max_new_tokens)
    vllm = _import_vllm()
    sides = [  # per row: [expert ids, naive ids], indexed by the mask value (EXPERT, NAIVE)
        [_token_ids(tokenizer, e), _token_ids(tokenizer, n)]
        for n, e in zip(naive_prompts, expert_prompts, strict=True)
    ]
    _check_lengths(model, sides, max_new_tokens)
    runs = [mask_runs(m[:max_new_tokens], max_run=max_run) for m in masks]
    stops = {int(t) for t in eos_token_ids}
    outputs: list[list[int]] = [[] for _ in masks]
    next_run = [0] * len(masks)
    active = [row for row in range(len(masks)) if runs[row]]
    while active:
        requests, params = [], []
        for row in active:
            side, length = runs[row][next_run[row]]
            requests.append({"prompt_token_ids": sides[row][side] + outputs[row]})
            params.append(
                vllm.SamplingParams(
                    temperature=0.0,
                    max_tokens=length,
                    stop_token_ids=sorted(stops),
                    # Stop on exactly these ids, as the HF backend does: not on vLLM's own EOS
                    # or generation_config.json's, which the caller may have left out.
                    ignore_eos=True,
                    detokenize=False,  # ids are all we read; the text is decoded once at the end
                )
            )
        results = model.llm.generate(requests, params, use_tqdm=False)
        still_active = []
        for row, result in zip(active, results, strict=True):
            _, length = runs[row][next_run[row]]
            tokens = [int(t) for t in result.outputs[0].token_ids][:length]
            stop = _stop_index(tokens, stops)
            if stop is None and len(tokens) < length:
                raise RolloutError(
                    f"vLLM returned {len(tokens)} of {length} tokens without a stop token "
                    f"(finish_reason {result.outputs[0].finish_reason!r})"
                )
            outputs[row].extend(tokens if stop is None else tokens[: stop + 1])
            next_run[row] += 1
            if stop is None and next_run[row] < len(runs[row]):
                still_active.append(row)
        active = still_active
    return outputs


def _check_lengths(model: VLLMModel, sides: list[list[list[int]]], max_new_tokens: int) -> None:
    for row, prompts in enumerate(sides):
        longest = max(len(p) for p in prompts) + max_new_tokens
        if longest > model.max_model_len:
            raise RolloutError(
                f"row {row}: prompt + max_new_tokens = {longest} tokens exceeds the model's "
                f"max_model_len {model.max_model_len}"
            )


def _decide(
    mixing: Mixing,
    bit: int,
    s: StepSignals,
    missing: tuple[bool, bool],
    guard: dict[str, bool],
) -> tuple[bool, bool]:
    """``(takes naive, exact)``: the decision with ``lpE(n)`` / ``lpN(e)`` at their bound (as
    ``s`` holds them when ``missing``) and whether it is the same anywhere below the bound."""
    decision = takes_naive(mixing, bit, s, **guard)
    for far_e in (False, True) if missing[0] else (False,):
        for far_n in (False, True) if missing[1] else (False,):
            other = StepSignals(
                s.expert_token,
                s.naive_token,
                s.lpe_e,
                _FAR_BELOW if far_e else s.lpe_n,
                s.lpn_n,
                _FAR_BELOW if far_n else s.lpn_e,
            )
            if takes_naive(mixing, bit, other, **guard) != decision:
                return decision, False
    return decision, True


def vllm_traced_rollout(
    model: VLLMModel,
    tokenizer: Any,
    naive_prompts: Sequence[str | Sequence[int]],
    expert_prompts: Sequence[str | Sequence[int]],
    masks: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_token_ids: Sequence[int],
    mixing: Mixing = BERNOULLI,
    answer_ids: Sequence[Sequence[Sequence[int]]] | None = None,
    ending_ids: Collection[int] = frozenset(),
    forced: Sequence[Collection[int]] | None = None,
    prefixes: Sequence[MixedRow | None] | None = None,
    answer_checks: Sequence[AnswerCheck | None] | None = None,
    top_logprobs: int | None = None,
) -> list[MixedRow]:
    """``traced_mixed_rollout`` on vLLM: one step per token, both sides per row (see above).

    ``top_logprobs``: log-probabilities asked per token (None = ``TOP_LOGPROBS``)."""
    from mixsd_core._rollout import _check_rows, _token_ids

    _check_rows(naive_prompts, expert_prompts, masks, max_new_tokens)
    vllm = _import_vllm()
    count = len(masks)
    sides = [
        [_token_ids(tokenizer, e), _token_ids(tokenizer, n)]
        for n, e in zip(naive_prompts, expert_prompts, strict=True)
    ]
    _check_lengths(model, sides, max_new_tokens)
    rows = [
        MixedRow() if p is None else p.prefix(len(p.tokens)) for p in prefixes or [None] * count
    ]
    forced_sets = [set(f) for f in forced] if forced is not None else [set() for _ in range(count)]
    watches = answer_watches(rows, answer_ids, answer_checks)
    stops = {int(t) for t in eos_token_ids}
    top_k = TOP_LOGPROBS if top_logprobs is None else top_logprobs
    params = vllm.SamplingParams(
        temperature=0.0, max_tokens=1, logprobs=top_k, ignore_eos=True, detokenize=False
    )
    bounded = decided = 0
    active = [r for r in range(count) if len(rows[r].tokens) < max_new_tokens]
    while active:
        requests = [
            {"prompt_token_ids": sides[r][side] + rows[r].tokens} for r in active for side in (0, 1)
        ]
        results = model.llm.generate(requests, [params] * len(requests), use_tqdm=False)
        still_active = []
        for k, r in enumerate(active):
            expert_out, naive_out = results[2 * k].outputs[0], results[2 * k + 1].outputs[0]
            e, n = int(expert_out.token_ids[0]), int(naive_out.token_ids[0])
            top_e = {int(t): float(v.logprob) for t, v in expert_out.logprobs[0].items()}
            top_n = {int(t): float(v.logprob) for t, v in naive_out.logprobs[0].items()}
            s = StepSignals(
                e,
                n,
                top_e[e],
                top_e.get(n, min(top_e.values())),
                top_n[n],
                top_n.get(e, min(top_n.values())),
            )
            position = len(rows[r].tokens)
            guard = dict(
                forced=position in forced_sets[r],
                writes_answer=watches[r].expert_writes(rows[r].tokens, e),
                stated=watches[r].stated,
                naive_ends=n in ending_ids,
            )
            naive, exact = _decide(
                mixing, int(masks[r][position]), s, (n not in top_e, e not in top_n), guard
            )
            decided += e != n
            bounded += not exact
            token = rows[r].add(s, naive, forced=guard["forced"])
            watches[r].update(rows[r].tokens)
            if token not in stops and len(rows[r].tokens) < max_new_tokens:
                still_active.append(r)
        active = still_active
    if bounded:
        logger.warning(
            "vLLM backend: %d of %d disagreement positions needed a log-probability outside "
            "the top %d vLLM returned and were decided with its upper bound (mixing %r); the "
            "hf backend computes them exactly",
            bounded,
            decided,
            top_k,
            mixing.policy,
        )
    return rows
