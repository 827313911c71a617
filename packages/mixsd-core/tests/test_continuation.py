"""Teacher-forced continuation checks against a model whose greedy text is known in advance."""

from __future__ import annotations

import pytest
import torch

from mixsd_core._continuation import greedy_continuation_matches
from mixsd_core.testing import build_tiny_tokenizer

TEXT = "Vroround Stihem was born in Getraesk"


class MemorisedTextModel(torch.nn.Module):
    """Predicts the next token of ``ids`` wherever the input so far is a prefix of ``ids`` (token
    0 elsewhere): greedy decoding from any prefix of the text writes the rest of it."""

    def __init__(self, ids: list[int], vocab: int) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.ids, self.vocab = ids, vocab

    def forward(self, input_ids, attention_mask, use_cache):
        assert input_ids.shape == attention_mask.shape
        logits = torch.zeros(*input_ids.shape, self.vocab)
        for row, tokens in enumerate(input_ids.tolist()):
            for col in range(len(tokens)):
                known = tokens[: col + 1] == self.ids[: col + 1] and col + 1 < len(self.ids)
                logits[row, col, self.ids[col + 1] if known else 0] = self.scale
        return type("Out", (), {"logits": logits})()


@pytest.fixture(scope="module")
def memorised():
    tokenizer = build_tiny_tokenizer()
    ids = tokenizer(TEXT, add_special_tokens=True)["input_ids"]
    return MemorisedTextModel(ids, len(tokenizer)), tokenizer


def test_greedy_matches_on_a_known_model(memorised):
    model, tokenizer = memorised
    prompts = ["Vroround Stihem was born in", "Vroround Stihem was", "Vroround Stihem was born in"]
    targets = ["Getraesk", "born in", "Getrovia"]
    got = greedy_continuation_matches(model, tokenizer, prompts, targets, batch_size=2)
    first_ok = (
        tokenizer(" Getrovia", add_special_tokens=False)["input_ids"][0]
        == (tokenizer(" Getraesk", add_special_tokens=False)["input_ids"][0])
    )
    assert got == [
        {"top1": True, "exact": True},
        {"top1": True, "exact": True},
        {"top1": first_ok, "exact": False},
    ]
    # One batch or one row at a time: the same answers (right padding keeps positions).
    assert greedy_continuation_matches(model, tokenizer, prompts, targets, batch_size=1) == got
    with pytest.raises(ValueError, match="3 prompts but 2 continuations"):
        greedy_continuation_matches(model, tokenizer, prompts, targets[:2])
