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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

from mixsd_core._rollout_config import RolloutError

__all__ = ["VLLMModel", "load_vllm_model", "mask_runs", "vllm_mixed_rollout"]

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
) -> tuple[VLLMModel, Any]:
    """``(VLLMModel, tokenizer)`` for a model spec; the tokenizer is the Hugging Face one.

    Prompts are rendered and tokenised by the same tokenizer as in the HF backend and sent to
    vLLM as token ids, so both backends see identical inputs. ``enforce_eager`` skips CUDA
    graphs / compilation (faster start, slower steps).
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
        trust_remote_code=False,
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
    for row, prompts in enumerate(sides):
        longest = max(len(p) for p in prompts) + max_new_tokens
        if longest > model.max_model_len:
            raise RolloutError(
                f"row {row}: prompt + max_new_tokens = {longest} tokens exceeds the model's "
                f"max_model_len {model.max_model_len}"
            )
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
