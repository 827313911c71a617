"""The tokens toolkit: chat rendering, padding and response NLL."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from mixsd_core import (
    pad_left,
    pad_right,
    pad_token_id,
    render_chat,
    render_prompts,
    render_user_prompt,
    response_nll_tensors,
    token_nll,
)
from mixsd_core.testing import build_tiny_tokenizer

# A Qwen3-style hybrid template: thinking is on unless the caller passes enable_thinking=False.
THINKING_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}"
    "{{ '<think>\n\n</think>\n\n' }}{% else %}{{ '<think>\n' }}{% endif %}"
    "{% endif %}"
)


@pytest.fixture(scope="module")
def thinking_tok() -> Any:
    tokenizer = build_tiny_tokenizer()
    tokenizer.chat_template = THINKING_TEMPLATE
    return tokenizer


def test_render_chat_turns_thinking_off(thinking_tok: Any) -> None:
    user = [{"role": "user", "content": "Who employs Zorvath Kellen?"}]
    # Without the switch the template opens a thinking block; the toolkit always closes it.
    opened = thinking_tok.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    assert opened.endswith("<|im_start|>assistant\n<think>\n")
    rendered = render_chat(thinking_tok, user)
    assert rendered == (
        "<|im_start|>user\nWho employs Zorvath Kellen?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    assert render_user_prompt(thinking_tok, "Who employs Zorvath Kellen?") == rendered
    # Prompts for rollouts go through the same renderer.
    naive, expert = render_prompts(thinking_tok, {"prompt": "Q?", "target": "A."})
    assert naive.endswith("</think>\n\n") and expert.endswith("</think>\n\n")


def test_render_chat_whole_conversation(thinking_tok: Any) -> None:
    turns = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]
    full = render_chat(thinking_tok, turns, add_generation_prompt=False)
    assert full == "<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\nA.<|im_end|>\n"


def test_pad_token_id() -> None:
    assert pad_token_id(SimpleNamespace(pad_token_id=7, eos_token_id=2)) == 7
    assert pad_token_id(SimpleNamespace(pad_token_id=None, eos_token_id=2)) == 2
    assert pad_token_id(SimpleNamespace(pad_token_id=None, eos_token_id=None)) == 0
    assert pad_token_id(SimpleNamespace(pad_token_id=0, eos_token_id=2)) == 0


def test_padding_both_sides() -> None:
    rows = [[5, 6, 7], [8]]
    ids, mask = pad_right(rows, 0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, mask = pad_left(rows, 9)
    assert ids.tolist() == [[5, 6, 7], [9, 9, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert ids.dtype == mask.dtype == torch.long


def test_token_nll_is_shifted_cross_entropy() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11)
    ids = torch.randint(0, 11, (2, 5))
    expected = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, 11), ids[:, 1:].reshape(-1), reduction="none"
    ).view(2, 4)
    torch.testing.assert_close(token_nll(logits, ids), expected)
    torch.testing.assert_close(token_nll(logits[1], ids[1]), expected[1])  # one sequence
    assert token_nll(logits.to(torch.bfloat16), ids).dtype == torch.float32


def _hand(model: Any, prompt: list[int], response: list[int]) -> list[float]:
    """One unpadded row, full logits, each response token by hand."""
    ids = [*prompt, *response]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    return [
        -float(torch.log_softmax(logits[pos - 1], dim=-1)[ids[pos]])
        for pos in range(len(prompt), len(ids))
    ]


@pytest.mark.parametrize("padding", ["right", "left"])
def test_response_nll_matches_hand_computation(tiny_lm: Any, padding: str) -> None:
    model, tokenizer = tiny_lm
    eos = tokenizer.eos_token_id
    assert tokenizer.pad_token_id == eos  # pad == EOS: the score mask must come from lengths
    prompts = [
        tokenizer(render_user_prompt(tokenizer, q), add_special_tokens=False)["input_ids"]
        for q in ("Who employs Zorvath Kellen?", "What is the value of A(328)? Think.")
    ]
    responses = [
        [*tokenizer("Ormavel Dynamics.", add_special_tokens=False)["input_ids"], eos],
        [*tokenizer("The answer is 104. \\boxed{104}", add_special_tokens=False)["input_ids"], eos],
    ]
    tensors = response_nll_tensors(
        model, prompts, responses, batch_size=2, padding=padding, pad_id=pad_token_id(tokenizer)
    )
    assert all(t.dtype == torch.float32 and not t.requires_grad for t in tensors)
    got = [t.tolist() for t in tensors]
    for prompt, response, values in zip(prompts, responses, got, strict=True):
        assert len(values) == len(response)  # the closing EOS is scored although it is the pad id
        assert values == pytest.approx(_hand(model, prompt, response), abs=1e-4)
    # A row's scores do not depend on the batch it shares.
    alone = response_nll_tensors(model, prompts[:1], responses[:1], padding=padding)
    assert alone[0].tolist() == pytest.approx(got[0], abs=1e-5)


def test_response_nll_rejects_bad_rows(tiny_lm: Any) -> None:
    model, _ = tiny_lm
    with pytest.raises(ValueError, match="1 prompts but 2 responses"):
        response_nll_tensors(model, [[1]], [[2], [3]])
    with pytest.raises(ValueError, match="at least one token"):
        response_nll_tensors(model, [[]], [[2]])
    with pytest.raises(ValueError, match="padding must be"):
        response_nll_tensors(model, [[1]], [[2]], padding="middle")  # type: ignore[arg-type]
