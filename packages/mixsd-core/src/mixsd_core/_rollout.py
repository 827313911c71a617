"""Mixed rollouts: two conditionals of one model decode in lockstep over one shared continuation.

The method, for one example: the EXPERT stream is the question with the gold target in context,
the NAIVE stream the question alone. At step t both streams predict their greedy next token, and
the pre-drawn Bernoulli(alpha) mask picks whose token is appended to *both*: ``mask[t] == 1``
takes the naive token, ``0`` the expert's (so a mask entry is the index of the stream it takes).
``reference_mixed_rollout`` writes exactly that, the slow obvious way. ``mixed_rollout`` is the
batched decoder the rollout stage runs; it must give the same tokens (the tests compare them).
``greedy_generate`` is the one-stream case: plain greedy decoding.

Adaptive mixing (``_rollout_policy``: gate, exchange, guard, and repair's forced positions)
decides from both streams' log-probabilities instead of the mask alone.
``reference_mixed_row`` is the method with any policy, the slow way; ``traced_mixed_rollout``
its batched twin, which also returns each row's trace (decisions, sides, signals) and can resume
rows from a kept prefix (repair: the prefix is prefilled again in one forward, its KV cache is
not reused).

Sampling (temperature / top-p) is not part of the method: it lives in ``_sampling``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import torch

from mixsd_core._rollout_policy import (
    BERNOULLI,
    AnswerCheck,
    AnswerWatch,
    MixedRow,
    Mixing,
    StepSignals,
    answer_watches,
    takes_naive,
)
from mixsd_core._stop_tokens import stop_token_ids
from mixsd_core._tokens import pad_left, pad_token_id

__all__ = [
    "EXPERT",
    "NAIVE",
    "greedy_generate",
    "mixed_rollout",
    "reference_mixed_rollout",
    "reference_mixed_row",
    "traced_mixed_rollout",
]

EXPERT, NAIVE = 0, 1  # stream indices; mask value 1 takes the naive token, 0 the expert's

Prompt = str | Sequence[int]
# pick_token(active_rows, logits_of_the_stream_each_row_takes) -> the next token of every row
TokenPicker = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------- the method


@torch.inference_mode()
def reference_mixed_rollout(
    model: Any,
    tokenizer: Any,
    naive_prompt: Prompt,
    expert_prompt: Prompt,
    mask: Sequence[int],
    *,
    max_new_tokens: int,
    eos_token_ids: Sequence[int],
) -> list[int]:
    """One example's mixed continuation (token ids, the stop token kept when reached).

    No batching and no cache: every step recomputes both full sequences, so the code is the
    method and nothing else. Tests hold ``mixed_rollout`` to it.
    """
    streams: list[list[int]] = [[], []]
    streams[EXPERT] = _token_ids(tokenizer, expert_prompt)
    streams[NAIVE] = _token_ids(tokenizer, naive_prompt)
    continuation: list[int] = []
    for step in range(max_new_tokens):
        greedy = [_greedy_next_token(model, prompt + continuation) for prompt in streams]
        token = greedy[NAIVE] if mask[step] == 1 else greedy[EXPERT]
        continuation.append(token)  # the shared continuation: both streams see the token
        if token in eos_token_ids:
            break
    return continuation


@torch.inference_mode()
def reference_mixed_row(
    model: Any,
    tokenizer: Any,
    naive_prompt: Prompt,
    expert_prompt: Prompt,
    mask: Sequence[int],
    *,
    max_new_tokens: int,
    eos_token_ids: Sequence[int],
    mixing: Mixing = BERNOULLI,
    answer_ids: Sequence[Sequence[int]] = (),
    ending_ids: Collection[int] = frozenset(),
    forced: Collection[int] = frozenset(),
    answer_check: AnswerCheck | None = None,
) -> MixedRow:
    """``reference_mixed_rollout`` under any mixing policy, with its trace.

    At each step both full sequences are recomputed, both greedy tokens and their four
    log-probabilities read, and ``takes_naive`` decides. ``answer_ids`` (the answer variants),
    ``ending_ids`` and ``answer_check`` (whether a continuation states the answer; see
    ``AnswerWatch``) are the answer terms'; positions in ``forced`` take the expert's token
    (repair).
    """
    streams: list[list[int]] = [[], []]
    streams[EXPERT] = _token_ids(tokenizer, expert_prompt)
    streams[NAIVE] = _token_ids(tokenizer, naive_prompt)
    row = MixedRow()
    watch = AnswerWatch(answer_ids, check=answer_check)
    for step in range(max_new_tokens):
        logits = [_next_logits(model, prompt + row.tokens) for prompt in streams]
        e, n = int(logits[EXPERT].argmax()), int(logits[NAIVE].argmax())
        lp_e, lp_n = (x.log_softmax(-1) for x in (logits[EXPERT], logits[NAIVE]))
        s = StepSignals(e, n, float(lp_e[e]), float(lp_e[n]), float(lp_n[n]), float(lp_n[e]))
        naive = takes_naive(
            mixing,
            int(mask[step]),
            s,
            forced=step in forced,
            writes_answer=watch.expert_writes(row.tokens, e),
            stated=watch.stated,
            naive_ends=n in ending_ids,
        )
        token = row.add(s, naive, forced=step in forced)
        watch.update(row.tokens)
        if token in eos_token_ids:
            break
    return row


def mixed_rollout(
    model: Any,
    tokenizer: Any,
    naive_prompts: Sequence[Prompt],
    expert_prompts: Sequence[Prompt],
    masks: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_token_ids: Sequence[int],
    pick_token: TokenPicker | None = None,
) -> list[list[int]]:
    """``reference_mixed_rollout`` for a batch of rows: one continuation per row, same tokens.

    ``masks[i][t]`` = 1 takes the naive stream's token at step t, 0 the expert's; each mask needs
    at least ``max_new_tokens`` entries. A row is finished when it emits a stop token.
    ``pick_token`` turns the logits of the stream the mask names into the token; None takes their
    argmax (the method). ``sampled_mixed_rollout`` samples instead.
    """
    _check_rows(naive_prompts, expert_prompts, masks, max_new_tokens)
    takes_naive = torch.tensor(
        [list(m[:max_new_tokens]) for m in masks], dtype=torch.bool, device=model.device
    )

    def choose(step: int, active: torch.Tensor, logits: list[torch.Tensor]) -> torch.Tensor:
        rows_take_naive = takes_naive[active, step][:, None]
        chosen = torch.where(rows_take_naive, logits[NAIVE], logits[EXPERT])
        # The argmax of the stream the mask names is that stream's greedy token.
        return chosen.argmax(-1) if pick_token is None else pick_token(active, chosen)

    prompt_sets: list[list[list[int]]] = [[], []]
    prompt_sets[EXPERT] = [_token_ids(tokenizer, p) for p in expert_prompts]
    prompt_sets[NAIVE] = [_token_ids(tokenizer, p) for p in naive_prompts]
    return lockstep_decode(
        model,
        prompt_sets,
        choose,
        max_new_tokens=max_new_tokens,
        eos_token_ids=eos_token_ids,
        pad_id=pad_token_id(tokenizer),
    )


def traced_mixed_rollout(
    model: Any,
    tokenizer: Any,
    naive_prompts: Sequence[Prompt],
    expert_prompts: Sequence[Prompt],
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
) -> list[MixedRow]:
    """``reference_mixed_row`` for a batch of rows: the same tokens, decisions and sides.

    ``answer_ids[i]`` and ``answer_checks[i]`` are row i's answer variants and check (the
    answer terms); ``forced[i]`` its positions forced to the expert (repair). ``prefixes[i]``,
    when given, is row i's kept start: it is appended to both prompts (prefilled in one
    forward) and decoding goes on from its end, at position ``len(prefix.tokens)`` of the mask,
    within ``max_new_tokens`` in all.
    """
    _check_rows(naive_prompts, expert_prompts, masks, max_new_tokens)
    count = len(masks)
    rows = [
        MixedRow() if p is None else p.prefix(len(p.tokens)) for p in prefixes or [None] * count
    ]
    forced_sets = [set(f) for f in forced] if forced is not None else [set() for _ in range(count)]
    starts = [len(r.tokens) for r in rows]
    if any(start >= max_new_tokens for start in starts):
        raise ValueError("a prefix must be shorter than max_new_tokens")
    watches = answer_watches(rows, answer_ids, answer_checks)

    def choose(step: int, active: torch.Tensor, logits: list[torch.Tensor]) -> torch.Tensor:
        e, n = logits[EXPERT].argmax(-1), logits[NAIVE].argmax(-1)
        lp_e = logits[EXPERT].log_softmax(-1).gather(1, torch.stack([e, n], 1)).tolist()
        lp_n = logits[NAIVE].log_softmax(-1).gather(1, torch.stack([n, e], 1)).tolist()
        tokens = []
        for k, (r, ek, nk) in enumerate(zip(active.tolist(), e.tolist(), n.tolist(), strict=True)):
            row, position = rows[r], starts[r] + step
            s = StepSignals(ek, nk, lp_e[k][0], lp_e[k][1], lp_n[k][0], lp_n[k][1])
            is_forced = position in forced_sets[r]
            naive = takes_naive(
                mixing,
                int(masks[r][position]),
                s,
                forced=is_forced,
                writes_answer=watches[r].expert_writes(row.tokens, ek),
                stated=watches[r].stated,
                naive_ends=nk in ending_ids,
            )
            tokens.append(row.add(s, naive, forced=is_forced))
            watches[r].update(row.tokens)
        return torch.tensor(tokens, dtype=torch.long, device=e.device)

    prompt_sets: list[list[list[int]]] = [[], []]
    prompt_sets[EXPERT] = [_token_ids(tokenizer, p) for p in expert_prompts]
    prompt_sets[NAIVE] = [_token_ids(tokenizer, p) for p in naive_prompts]
    for stream in prompt_sets:  # both streams see the kept continuation
        for prompt, row in zip(stream, rows, strict=True):
            prompt.extend(row.tokens)
    lockstep_decode(
        model,
        prompt_sets,
        choose,
        max_new_tokens=max_new_tokens,
        eos_token_ids=eos_token_ids,
        pad_id=pad_token_id(tokenizer),
        limits=[max_new_tokens - start for start in starts],
    )
    return rows


def greedy_generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    *,
    max_new_tokens: int,
    stop_ids: Sequence[int] | None = None,
    batch_size: int = 8,
) -> list[list[int]]:
    """Plain greedy continuations (token ids, the stop token kept when reached), one per prompt.

    A prompt is text (tokenised without special tokens: render the chat first) or token ids.
    ``stop_ids`` defaults to ``stop_token_ids(model, tokenizer)``. Rows are decoded
    ``batch_size`` at a time in the given order; a row's tokens do not depend on its batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    stops = list(stop_token_ids(model, tokenizer) if stop_ids is None else stop_ids)

    def choose(step: int, active: torch.Tensor, logits: list[torch.Tensor]) -> torch.Tensor:
        return logits[0].argmax(-1)

    outputs: list[list[int]] = []
    for start in range(0, len(prompts), batch_size):
        batch = [_token_ids(tokenizer, p) for p in prompts[start : start + batch_size]]
        outputs += lockstep_decode(
            model,
            [batch],
            choose,
            max_new_tokens=max_new_tokens,
            eos_token_ids=stops,
            pad_id=pad_token_id(tokenizer),
        )
    return outputs


# ---------------------------------------------------------------------------- lockstep decoding


def _token_ids(tokenizer: Any, prompt: Prompt) -> list[int]:
    # Rendered chat prompts already hold their special tokens: never add a BOS on top.
    if isinstance(prompt, str):
        return list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    return [int(t) for t in prompt]


def _greedy_next_token(model: Any, ids: list[int]) -> int:
    return int(_next_logits(model, ids).argmax())


def _next_logits(model: Any, ids: list[int]) -> torch.Tensor:
    return model(input_ids=torch.tensor([ids], device=model.device)).logits[0, -1].float()


def _check_rows(
    naive_prompts: Sequence[Any],
    expert_prompts: Sequence[Any],
    masks: Sequence[Sequence[int]],
    max_new_tokens: int,
) -> None:
    if not len(naive_prompts) == len(expert_prompts) == len(masks):
        raise ValueError("naive_prompts, expert_prompts and masks must have the same length")
    if any(len(m) < max_new_tokens for m in masks):
        raise ValueError(f"every mask needs at least max_new_tokens={max_new_tokens} entries")


class _Stream:
    """The decoding state of a batch of rows: KV cache, attention mask, next position.

    Rows of different prompt lengths share one cache through left padding, so the expert and
    naive prompts of every row decode in one forward per step: on a CPU a small batch costs
    about one read of the weights, whatever its size, so one forward of 2B rows takes about half
    the time of two forwards of B.
    """

    def __init__(self, model: Any, prompts: list[list[int]], pad_id: int) -> None:
        from transformers import DynamicCache

        device = model.device
        # Left padding: every row's next token lands in the same (last) column.
        ids, attention = pad_left(prompts, pad_id, device)
        self.attention = attention
        # Positions count real tokens only, as in `generate`; padded slots get a dummy 1.
        positions = (attention.cumsum(-1) - 1).masked_fill(attention == 0, 1)
        self.next_position = positions[:, -1] + 1
        self.cache = DynamicCache()
        self.logits = self._forward(model, ids, positions)

    def _forward(self, model: Any, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        out = model(
            input_ids=ids,
            attention_mask=self.attention,
            position_ids=positions,
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,  # the full-vocab logits of a whole prompt are never needed
        )
        return out.logits[:, -1].float()

    def keep(self, rows: torch.Tensor) -> None:
        self.cache.batch_select_indices(rows)
        self.attention = self.attention[rows]
        self.next_position = self.next_position[rows]
        self.logits = self.logits[rows]

    def advance(self, model: Any, tokens: torch.Tensor) -> None:
        ones = torch.ones_like(self.attention[:, :1])
        self.attention = torch.cat([self.attention, ones], dim=1)
        positions = self.next_position[:, None]
        self.next_position = self.next_position + 1
        self.logits = self._forward(model, tokens[:, None], positions)


# choose(step, active_rows, next_token_logits_per_stream) -> the next token of every active row
Chooser = Callable[[int, torch.Tensor, list[torch.Tensor]], torch.Tensor]


@torch.inference_mode()
def lockstep_decode(
    model: Any,
    prompt_sets: list[list[list[int]]],
    choose: Chooser,
    *,
    max_new_tokens: int,
    eos_token_ids: Sequence[int],
    pad_id: int,
    limits: Sequence[int] | None = None,
) -> list[list[int]]:
    """Decode every stream of each row together; each chosen token is appended to all streams.

    ``prompt_sets[s][i]`` is row i's prompt in stream s. One forward per step over every stream
    of the rows still decoding; a row that emits a stop token, or has decoded ``limits[i]`` tokens
    (default ``max_new_tokens``), leaves the batch (index selection).
    """
    rows, sets = len(prompt_sets[0]), len(prompt_sets)
    outputs: list[list[int]] = [[] for _ in range(rows)]
    if rows == 0 or max_new_tokens <= 0:
        return outputs
    # Stream s of row i is row s * (active rows) + i of the one batch.
    stream = _Stream(model, [p for prompts in prompt_sets for p in prompts], pad_id)
    active = torch.arange(rows, device=model.device)
    eos = torch.tensor(sorted(set(eos_token_ids)), dtype=torch.long, device=model.device)
    budget = torch.tensor(
        [max_new_tokens] * rows if limits is None else list(limits), device=model.device
    )
    steps = int(budget.max())
    for step in range(steps):
        tokens = choose(step, active, list(stream.logits.chunk(sets)))
        for row, token in zip(active.tolist(), tokens.tolist(), strict=True):
            outputs[row].append(token)
        if step + 1 == steps:
            break
        alive = ~torch.isin(tokens, eos) & (budget[active] > step + 1)
        if not bool(alive.any()):
            break
        if not bool(alive.all()):  # finished rows leave the batch, in every stream
            kept = alive.nonzero().squeeze(1)
            stream.keep(torch.cat([kept + s * len(active) for s in range(sets)]))
            active, tokens = active[kept], tokens[kept]
        stream.advance(model, tokens.repeat(sets))
    return outputs
