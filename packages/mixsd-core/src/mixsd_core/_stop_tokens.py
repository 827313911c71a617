"""Where a generated target ends: the stop token ids of a model and its tokenizer.

Kept free of torch: the rollout stage reads them before decoding, and `import mixsd_core` stays light.
"""

from __future__ import annotations

from typing import Any

from mixsd_core._rollout_config import RolloutError

__all__ = ["stop_token_ids"]

# Chat end tokens of the model families we run; a tokenizer's EOS may be a different one.
_STOP_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<|end_of_text|>")


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """EOS of the tokenizer and generation config, plus the usual chat end tokens in the vocab."""
    ids: set[int] = set()
    for value in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if value is not None:
            ids.update([value] if isinstance(value, int) else value)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in _STOP_TOKENS if t in vocab)
    if not ids:
        raise RolloutError("the tokenizer defines no EOS token: cannot tell where a target ends")
    return sorted(ids)
