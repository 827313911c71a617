"""The tiny test model: deterministic bytes, a round-tripping tokenizer, non-degenerate outputs."""

from __future__ import annotations

from pathlib import Path

import torch

from mixsd_core.testing import build_tiny_model, build_tiny_tokenizer


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = build_tiny_model(tmp_path / "a", seed=3)
    b = build_tiny_model(tmp_path / "b", seed=3)
    c = build_tiny_model(tmp_path / "c", seed=4)
    weights = [(p / "model.safetensors").read_bytes() for p in (a, b, c)]
    assert weights[0] == weights[1] != weights[2]
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    assert not list(a.glob("*.bin")), "safetensors only"


def test_tokenizer_round_trip_and_specials() -> None:
    tok = build_tiny_tokenizer()
    for text in ("Who employs Zorvath Kellen? \\boxed{Ormavel Dynamics}", "ünï 🙂 42\n\ttabs"):
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert tok.eos_token == tok.pad_token == "<|im_end|>"
    assert tok.bos_token is None
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert rendered == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    ids = tok(rendered, add_special_tokens=False)["input_ids"]
    assert ids.count(tok.convert_tokens_to_ids("<|im_start|>")) == 2


def test_greedy_outputs_depend_on_the_prompt(tiny_lm, make_records) -> None:
    """Guard against a degenerate model, under which tests comparing decoders cannot fail."""
    model, tok = tiny_lm
    questions = [r["prompt"] for r in make_records()]
    outputs = []
    for q in questions:
        text = tok.apply_chat_template(
            [{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True
        )
        ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
        outputs.append(model.generate(ids, max_new_tokens=16, do_sample=False)[0, ids.shape[1] :])
    assert len({tuple(o.tolist()) for o in outputs}) == len(questions)
    assert len({len(o) for o in outputs}) >= 3, "continuations should stop at different steps"
    assert all(len(set(o.tolist())) > len(o) // 2 for o in outputs), "no token repeated forever"
