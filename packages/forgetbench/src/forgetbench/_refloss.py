"""Reference-loss forgetting, ΔL_ref (token mean) (the paper's Eq. 1-2).

The base model θ₀ answers a fixed set of general prompts greedily, once; its responses are cached
per base model. L_ref(θ) is the token-mean NLL of those responses under θ (every response token
of every prompt weighs the same: Σ NLL / Σ tokens), and ΔL_ref = L_ref(θ) − L_ref(θ₀). It moves
even where a small model scores near zero on the benchmarks themselves.

fishertools' ΔNLL (sample mean) is a different measure on a similar set: each response's mean
NLL, averaged over responses (a short response weighs as much as a long one).

The default reference set interleaves held-out prompts that ship offline (gsm8k-100 problems,
HumanEval functions, zero-shot MMLU questions), round-robin, in file order; a JSONL file of
``{"prompt": ...}`` rows can replace it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from forgetbench._data import load_benchmark
from forgetbench._prompts import code_prompt, math_prompt, mmlu_prompt, mmlu_split
from mixsd_base import atomic_write, read_json, read_jsonl

__all__ = ["delta_l_ref_se", "l_ref", "reference_prompts", "reference_set", "run_refloss"]


def l_ref(nll: Sequence[tuple[float, int]]) -> tuple[float, int]:
    """L_ref, the token mean of ``(summed NLL, token count)`` per response, and the token count.

    The one definition of L_ref; ΔL_ref (token mean) is L_ref(θ) − L_ref(θ₀).
    """
    tokens = sum(n for _, n in nll)
    return sum(s for s, _ in nll) / max(tokens, 1), tokens


def delta_l_ref_se(
    mine: Sequence[tuple[float, int]], base: Sequence[tuple[float, int]]
) -> float | None:
    """Standard error of ΔL_ref over the reference prompts (None below two prompts).

    ΔL_ref = Σ dᵢ / Σ tᵢ with dᵢ the increase of prompt i's summed NLL and tᵢ its tokens (the
    same responses on both sides): a ratio estimator, whose linearised variance is
    n / (n − 1) · Σ (dᵢ − ΔL_ref · tᵢ)² / (Σ tᵢ)². It says whether a ΔL_ref is noise."""
    pairs = [(m - b, t) for (m, t), (b, _) in zip(mine, base, strict=True)]
    n, tokens = len(pairs), sum(t for _, t in pairs)
    if n < 2 or tokens == 0:
        return None
    delta = sum(d for d, _ in pairs) / tokens
    spread = sum((d - delta * t) ** 2 for d, t in pairs)
    return math.sqrt(n / (n - 1) * spread) / tokens


def response_nll_sums(
    model: Any,
    tokenizer: Any,
    rendered: Sequence[str],
    responses: Sequence[Sequence[int]],
    *,
    batch_size: int,
) -> list[tuple[float, int]]:
    """``(summed NLL, token count)`` of each response's tokens given its rendered prompt
    (mixsd_core.response_nll_tensors, right padding)."""
    from mixsd_core import pad_token_id, response_nll_tensors

    prompt_rows = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in rendered]
    nll = response_nll_tensors(
        model,
        prompt_rows,
        responses,
        batch_size=batch_size,
        padding="right",
        pad_id=pad_token_id(tokenizer),
    )
    return [(float(t.sum()), len(t)) for t in nll]


def reference_prompts(n: int = 200, *, prompts_file: str | Path | None = None) -> list[str]:
    """The ``n`` user turns of the reference set (deterministic)."""
    if prompts_file is not None:
        path = Path(prompts_file).expanduser().absolute()
        rows = read_jsonl(  # an empty file is an error: no reference set to measure on
            path, required=("prompt",), types={"prompt": str}, what="reference prompt file"
        )
        return [row["prompt"] for row in rows][:n]
    _, mmlu = mmlu_split(load_benchmark("mmlu"))
    pools = [
        [math_prompt(r["problem"]) for r in load_benchmark("gsm8k-100")],
        [code_prompt(r["prompt"]) for r in load_benchmark("humaneval")],
        # Spread over subjects: the file is grouped by subject.
        [mmlu_prompt(r, []) for r in mmlu[:: max(1, len(mmlu) // n)]],
    ]
    out: list[str] = []
    for i in range(n):
        pool = pools[i % len(pools)]
        out.append(pool[(i // len(pools)) % len(pool)])
    return out


def _model_key(spec: str) -> dict[str, Any]:
    """What identifies a base model for the cache: its spec, plus weight files' sizes and times."""
    path = Path(spec).expanduser()
    if not path.exists():
        return {"spec": spec}
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
    stats = [(f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in files]
    return {"spec": str(path.absolute()), "weights": stats}


def reference_set(
    base_spec: str,
    prompts: list[str],
    *,
    max_new_tokens: int,
    batch_size: int,
    cache_dir: str | Path,
    load: Callable[[str], tuple[Any, Any]],
    base: tuple[Any, Any] | None = None,
) -> dict[str, Any]:
    """The base model's greedy responses to ``prompts`` and L_ref(θ₀), cached on disk."""
    from mixsd_core import greedy_generate, render_user_prompt

    # "format" 2: the cache holds each response's summed NLL too (ΔL_ref's standard error).
    key = {
        "model": _model_key(base_spec),
        "prompts": prompts,
        "max_new_tokens": max_new_tokens,
        "format": 2,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    cache = Path(cache_dir).expanduser().absolute() / "refloss" / f"{digest}.json"
    if cache.is_file():
        return read_json(cache)
    model, tokenizer = base if base is not None else load(base_spec)
    rendered = [render_user_prompt(tokenizer, p) for p in prompts]
    responses = greedy_generate(
        model, tokenizer, rendered, max_new_tokens=max_new_tokens, batch_size=batch_size
    )
    sums = response_nll_sums(model, tokenizer, rendered, responses, batch_size=batch_size)
    l_ref_base, tokens = l_ref(sums)
    data = {
        "base_model": base_spec,
        "rendered": rendered,
        "responses": responses,
        "l_ref_base": l_ref_base,
        "tokens": tokens,
        "nll_sums": [list(pair) for pair in sums],
    }
    with atomic_write(cache) as f:  # a crashed run never leaves a half-written reference
        f.write(json.dumps(data))
    return data


def run_refloss(
    model: Any,
    tokenizer: Any,
    base_spec: str,
    *,
    load: Callable[[str], tuple[Any, Any]],
    n_prompts: int = 200,
    prompts_file: str | Path | None = None,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    cache_dir: str | Path = "~/.cache/forgetbench",
    is_base: bool = False,
) -> dict[str, Any]:
    """L_ref of ``model`` on the base model's reference responses, and ΔL_ref (token mean), its
    increase over the base model's (key ``delta_l_ref``). ``nll_sums`` keeps each response's
    ``[summed NLL, tokens]``, so that two models can be compared prompt by prompt (paired)."""
    prompts = reference_prompts(n_prompts, prompts_file=prompts_file)
    ref = reference_set(
        base_spec,
        prompts,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        cache_dir=cache_dir,
        load=load,
        base=(model, tokenizer) if is_base else None,
    )
    # The base model's own sums are the reference's (cached with it): no second pass.
    sums = (
        [(float(a), int(b)) for a, b in ref["nll_sums"]]
        if is_base
        else response_nll_sums(
            model, tokenizer, ref["rendered"], ref["responses"], batch_size=batch_size
        )
    )
    mine, tokens = l_ref(sums)
    return {
        "base_model": base_spec,
        "l_ref": mine,
        "l_ref_base": ref["l_ref_base"],
        "delta_l_ref": mine - ref["l_ref_base"],
        "delta_l_ref_se": delta_l_ref_se(sums, [tuple(p) for p in ref["nll_sums"]]),
        "n_prompts": len(prompts),
        "n_tokens": tokens,
        "nll_sums": [[s, n] for s, n in sums],
    }
