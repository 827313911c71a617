"""MEMIT (Meng et al., 2023, "Mass-Editing Memory in a Transformer"), from the paper's equations.

For edits i = 1..n with subject s_i, prompt p_i and new object o_i, and edited layers
l_1 < ... < l_L (down_proj weights W_l, d_out x d_in):

1. Target vectors (paper eq. 16). At the last edited layer L, find a residual delta_i added to
   the hidden state h_i^L at the subject's last token that makes the model say o_i:
   minimise  mean_j -log P(o_i | x_j + p_i, h^L += delta_i)          (x_j: context prefixes)
           + kl_factor * KL(P(. | "{s_i} is a", h^L += delta_i) || P_0(. | "{s_i} is a"))
           + v_weight_decay * |delta_i| / |h_i^L|^2,
   with Adam, |delta_i| clamped to clamp_norm_factor * |h_i^L|. z_i = h_i^L + delta_i.
2. Keys k_i^l: the down_proj input at the subject's last token, averaged over the context
   prefixes (the empty prefix weighs half, the generated ones share the other half, as in the
   reference implementation).
3. Spread (paper eq. 14 and Alg. 1): for l = l_1 .. l_L in order, with keys recomputed at the
   current weights, R = (Z - H^L) / (layers left, incl. l), and
   dW_l = R K^T (lambda C_l + K K^T)^-1, applied before the next layer's keys are read.
   C_l = E[k k^T] over a corpus (``_stats``), lambda = mom2_update_weight. Solved, not inverted.

Shapes below: keys as rows, ``K`` (n, d_in), ``R`` (n, d_out); so the paper's K K^T is K.T @ K.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from mixsd_core import pad_left, pad_right, pad_token_id
from mixsd_core._continuation import continuation_ids, greedy_continuation_matches
from mixsd_train.editing._config import MEMITConfig
from mixsd_train.editing._hooks import (
    add_at_positions,
    decoder_layers,
    down_proj,
    down_proj_input,
    encode_prompts,
    layer_output,
    replay_from,
)
from mixsd_train.editing._requests import EditRequest

__all__ = [
    "TEMPLATE_START_WORDS",
    "apply_memit",
    "compute_keys",
    "compute_target",
    "compute_targets",
    "context_templates",
    "rewrite_accuracy",
    "spread_update",
    "subject_outputs",
]

# The reference implementation's start words for the generated prefixes.
TEMPLATE_START_WORDS = ("The", "Therefore", "Because", "I", "You")

SecondMoments = Callable[[Sequence[int]], dict[int, torch.Tensor]]


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def context_templates(model: Any, tokenizer: Any, count: int, tokens: int, seed: int) -> list[str]:
    """``["{}", "<prefix 1>. {}", ...]``: the model's own short continuations of start words.

    Sampled (top-k 5, as the reference) under a private seeded RNG: same seed, same templates.
    Braces are removed from the text, so each template holds exactly one ``{}``.
    """
    if count == 0:
        return ["{}"]
    starts = [TEMPLATE_START_WORDS[i % len(TEMPLATE_START_WORDS)] for i in range(count)]
    pad = pad_token_id(tokenizer)
    rows = [tokenizer(s, add_special_tokens=True)["input_ids"] for s in starts]
    # Left padding for generation: every row continues from its last real token.
    ids, mask = pad_left(rows, pad)
    width = ids.shape[1]
    devices = [_device(model)] if _device(model).type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        out = model.generate(
            input_ids=ids.to(_device(model)),
            attention_mask=mask.to(_device(model)),
            do_sample=True,
            top_k=5,
            top_p=1.0,
            temperature=1.0,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            pad_token_id=pad,
        )
    texts = tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    clean = [
        " ".join((s + t).replace("{", " ").replace("}", " ").split())
        for s, t in zip(starts, texts, strict=True)
    ]
    return ["{}", *(f"{text}. {{}}" for text in clean)]


def _keys_at(
    model: Any, tokenizer: Any, texts: list[str], ends: list[int], layer: int, batch_size: int
) -> torch.Tensor:
    """down_proj inputs of ``layer`` at each text's subject-last token, (len(texts), d_in) fp64."""
    ids, positions = encode_prompts(tokenizer, texts, ends)
    out = []
    for start in range(0, len(ids), batch_size):
        batch_ids, mask = pad_right(
            ids[start : start + batch_size], pad_token_id(tokenizer), _device(model)
        )
        where = torch.tensor(positions[start : start + batch_size], device=batch_ids.device)
        with torch.no_grad():
            keys = down_proj_input(model, layer, batch_ids, mask)
        out.append(keys[torch.arange(len(where)), where].double())
    return torch.cat(out)


def compute_keys(
    model: Any,
    tokenizer: Any,
    requests: Sequence[EditRequest],
    layer: int,
    templates: Sequence[str],
    batch_size: int = 16,
) -> torch.Tensor:
    """``K`` (n, d_in), fp64: per edit, (key with no prefix + mean key over prefixes) / 2."""
    texts, ends = zip(*(r.text(t) for r in requests for t in templates), strict=True)
    keys = _keys_at(model, tokenizer, list(texts), list(ends), layer, batch_size)
    keys = keys.view(len(requests), len(templates), -1)
    if len(templates) == 1:
        return keys[:, 0]
    return (keys[:, 0] + keys[:, 1:].mean(dim=1)) / 2


def subject_outputs(
    model: Any, tokenizer: Any, requests: Sequence[EditRequest], layer: int, batch_size: int = 16
) -> torch.Tensor:
    """Output of decoder layer ``layer`` at the subject's last token of each bare prompt, fp64."""
    texts, ends = zip(*(r.text() for r in requests), strict=True)
    ids, positions = encode_prompts(tokenizer, list(texts), list(ends))
    out = []
    for start in range(0, len(ids), batch_size):
        batch_ids, mask = pad_right(
            ids[start : start + batch_size], pad_token_id(tokenizer), _device(model)
        )
        where = positions[start : start + batch_size]
        with torch.no_grad():
            states = layer_output(model, layer, batch_ids, mask)
        out.append(states[torch.arange(len(where)), torch.tensor(where)].double())
    return torch.cat(out)


def compute_target(
    model: Any,
    tokenizer: Any,
    request: EditRequest,
    layer: int,
    templates: Sequence[str],
    config: MEMITConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """z (d,) at the output of ``layer`` for one edit, and a summary of the search."""
    device = _device(model)
    prompts = [request.text(t) for t in templates]
    kl_text = config.kl_prompt.replace("{}", request.subject)
    kl_end = config.kl_prompt.index("{}") + len(request.subject)
    ids, positions = encode_prompts(
        tokenizer, [p for p, _ in prompts] + [kl_text], [e for _, e in prompts] + [kl_end]
    )
    target = continuation_ids(tokenizer, prompts[0][0], request.target_new)
    # Rewrite rows read the new object teacher-forced; the last row is the KL prompt.
    rows = [row + target[:-1] for row in ids[:-1]] + [ids[-1]]
    batch, mask = pad_right(rows, pad_token_id(tokenizer), device)
    n_rewrite = len(prompts)
    pred_pos = torch.tensor(
        [[len(row) - 1 + j for j in range(len(target))] for row in ids[:-1]], device=device
    )  # (n_rewrite, m): where each target token is predicted
    target_t = torch.tensor(target, device=device).expand(n_rewrite, -1)
    lookup_rows = torch.arange(len(rows), device=device)
    lookup_pos = torch.tensor(positions, device=device)
    head = model.get_output_embeddings()

    with torch.no_grad():  # the layers up to ``layer`` do not see delta: run them once
        frozen = layer_output(model, layer, batch, mask).detach()
    init = frozen[0, positions[0]].float()  # h^L at the bare prompt's subject

    def log_probs_at(delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with (
            replay_from(model, layer, frozen),
            add_at_positions(model, layer, lookup_rows, lookup_pos, delta),
        ):
            hidden = model.model(
                input_ids=batch, attention_mask=mask, use_cache=False
            ).last_hidden_state
        rewrite = head(hidden[torch.arange(n_rewrite, device=device)[:, None], pred_pos]).float()
        kl_row = head(hidden[-1, lookup_pos[-1]]).float()
        return F.log_softmax(rewrite, dim=-1), F.log_softmax(kl_row, dim=-1)

    delta = torch.zeros(model.config.hidden_size, device=device, requires_grad=True)
    with torch.no_grad():
        _, kl_init = log_probs_at(delta)
    max_norm = config.clamp_norm_factor * init.norm()
    optimizer = torch.optim.Adam([delta], lr=config.v_lr)
    nll_value, steps = float("nan"), 0
    while steps < config.v_num_grad_steps:
        steps += 1
        rewrite_lp, kl_lp = log_probs_at(delta)
        nll = -rewrite_lp.gather(-1, target_t[..., None]).squeeze(-1).mean(dim=1).mean()
        # KL(edited || original), as in the paper (ROME eq. 4); F.kl_div(a, b) is KL(b || a).
        kl = F.kl_div(kl_init, kl_lp, log_target=True, reduction="sum")
        decay = config.v_weight_decay * delta.norm() / init.norm() ** 2
        nll_value = float(nll.detach())
        if nll_value < config.v_stop_nll:
            break
        optimizer.zero_grad()
        (nll + config.kl_factor * kl + decay).backward()
        optimizer.step()
        with torch.no_grad():  # project back into the ball of radius clamp * |h|
            if delta.norm() > max_norm:
                delta.mul_(max_norm / delta.norm())
    z = (init + delta.detach()).double()
    return z, {
        "nll": nll_value,
        "steps": steps,
        "delta_norm": float(delta.detach().norm()),
        "h_norm": float(init.norm()),
    }


def compute_targets(
    model: Any,
    tokenizer: Any,
    requests: Sequence[EditRequest],
    layer: int,
    templates: Sequence[str],
    config: MEMITConfig,
    *,
    progress: bool = True,
) -> tuple[torch.Tensor, list[dict[str, float]]]:
    """Z (n, d) fp64 at the output of ``layer``, one row per edit, and each search's summary."""
    from tqdm.auto import tqdm

    requires_grad = {name: p.requires_grad for name, p in model.named_parameters()}
    model.requires_grad_(False)  # gradients flow to delta only
    try:
        searches = [
            compute_target(model, tokenizer, r, layer, templates, config)
            for r in tqdm(requests, desc="memit: target vectors", unit="edit", disable=not progress)
        ]
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(requires_grad[name])
    return torch.stack([z for z, _ in searches]), [info for _, info in searches]


def spread_update(
    model: Any,
    tokenizer: Any,
    requests: Sequence[EditRequest],
    targets: torch.Tensor,
    layers: Sequence[int],
    moments: dict[int, torch.Tensor],
    templates: Sequence[str],
    *,
    update_weight: float,
    batch_size: int = 16,
) -> tuple[dict[int, float], dict[int, float]]:
    """Write Z into the down_proj weights of ``layers``, lowest first; ||dW|| and mean ||Z - H||.

    Each layer takes 1/(layers left) of what is still missing at the last layer, measured after
    the layers below were updated, so later layers correct what earlier ones could not write.
    """
    layers = sorted(layers)
    norms: dict[int, float] = {}
    residual_norms: dict[int, float] = {}
    for i, layer in enumerate(layers):
        keys = compute_keys(model, tokenizer, requests, layer, templates, batch_size)
        current = subject_outputs(model, tokenizer, requests, layers[-1], batch_size)
        residual = (targets - current) / (len(layers) - i)
        lhs = update_weight * moments[layer].double() + keys.T @ keys
        solved = torch.linalg.solve(lhs, keys.T)  # (lambda C + K K^T)^-1 K, (d_in, n)
        update = residual.T @ solved.T  # (d_out, d_in)
        with torch.no_grad():
            weight = down_proj(model, layer).weight
            weight.add_(update.to(device=weight.device, dtype=weight.dtype))
        norms[layer] = float(update.norm())
        residual_norms[layer] = float((targets - current).norm(dim=1).mean())
    return norms, residual_norms


def apply_memit(
    model: Any,
    tokenizer: Any,
    requests: Sequence[EditRequest],
    config: MEMITConfig,
    layers: Sequence[int],
    second_moments: SecondMoments,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Edit ``model`` in place so each request's prompt continues with its new object.

    ``second_moments(layers)`` returns C per layer (called after the targets are found, so a
    cache miss shows in its own timing). Returns norms, timings and templates.
    """
    layers = sorted(layers)
    if layers[-1] >= len(decoder_layers(model)):
        raise ValueError(f"layer {layers[-1]} is out of range for {len(decoder_layers(model))}")
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    templates = context_templates(
        model, tokenizer, config.context_templates, config.context_template_tokens, config.seed
    )
    timings["context_templates_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    targets, searches = compute_targets(
        model, tokenizer, requests, layers[-1], templates, config, progress=progress
    )
    timings["targets_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    moments = second_moments(layers)
    timings["second_moments_s"] = time.perf_counter() - clock
    clock = time.perf_counter()
    norms, residual_norms = spread_update(
        model,
        tokenizer,
        requests,
        targets,
        layers,
        moments,
        templates,
        update_weight=config.mom2_update_weight,
        batch_size=config.batch_size,
    )
    timings["update_s"] = time.perf_counter() - clock
    return {
        "layers": layers,
        "update_norms": norms,
        "residual_norms": residual_norms,
        "context_templates": templates,
        "targets": [{"id": r.id, **info} for r, info in zip(requests, searches, strict=True)],
        "timings": timings,
    }


def rewrite_accuracy(
    model: Any, tokenizer: Any, requests: Sequence[EditRequest], batch_size: int = 16
) -> list[dict[str, Any]]:
    """Per edit: is the new object's first token top-1, and is all of it the greedy continuation?

    Teacher-forced argmax on the bare prompt + new object: "exact" means greedy decoding from the
    prompt writes the new object token for token.
    """
    prompts = [r.text()[0] for r in requests]
    matches = greedy_continuation_matches(
        model, tokenizer, prompts, [r.target_new for r in requests], batch_size=batch_size
    )
    return [{"id": r.id, **m} for r, m in zip(requests, matches, strict=True)]
