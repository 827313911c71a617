"""A tiny, deterministic Llama-style chat model for tests (every package's tests use it).

``build_tiny_model(folder)`` writes a Hugging Face folder (safetensors weights, a byte-level BPE
tokenizer, a ChatML chat template) in about a second, offline. It mirrors the properties of the
default model that matter to the pipeline: EOS is ``<|im_end|>`` and the pad token equals EOS
(so label masks must come from attention masks), and there is no BOS token.

A randomly initialised transformer with the usual small init (std 0.02) has nearly flat logits
and tends to repeat one token forever, which makes tests that compare decoding paths unable to
fail. So the init is scaled up (``init_std``): greedy continuations then depend on the prompt and
change from step to step. ``eos_boost`` scales the EOS row of the output head so that some
continuations stop early, at different steps for different prompts.
"""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path

# The same ChatML template the registry gives a GGUF without one.
from mixsd_core._model_registry import CHATML_TEMPLATE
from mixsd_core._rollout_policy import Mixing

__all__ = [
    "CHATML_TEMPLATE",
    "EXAMPLE_POLICIES",
    "HYBRID_THINKING_TEMPLATE",
    "SPECIAL_TOKENS",
    "THINKING_OFF_REPLY_START",
    "build_tiny_model",
    "build_tiny_tokenizer",
]

SPECIAL_TOKENS = ("<|im_start|>", "<|im_end|>")

# One setting per mixing policy whose knob splits the tiny model's disagreements between the
# sides (its context lifts range 0-16 nats, the expert's cost of the naive token 0.5-19), so a
# test comparing decoders sees both sides taken; the GPU check uses the same settings.
EXAMPLE_POLICIES = {
    "bernoulli": Mixing(),
    "gate": Mixing("gate", tau=1e-3),
    "exchange": Mixing("exchange", kappa=1.0),
    "guard": Mixing("guard", delta=8.0),
    "gate + answer guard": Mixing("gate", tau=1e-3, answer_guard=True),
}

# A hybrid-thinking ChatML template with Qwen3's ``enable_thinking`` switch, cut down to what the
# pipeline renders (no tools, no system-prompt handling). As in Qwen3's: with thinking off the
# generation prompt ends in an empty ``<think>`` block, and the final assistant turn of a rendered
# conversation carries the same empty block, so a prompt rendered with thinking off is a prefix of
# its conversation. With thinking on (the switch unset or true) the generation prompt stops at
# ``<|im_start|>assistant\n``, and the model would open its thoughts there. A path that renders
# with thinking on, or without the chat template, therefore lacks ``THINKING_OFF_REPLY_START``.
HYBRID_THINKING_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' and loop.last %}"
    "{{- '<|im_start|>assistant\n<think>\n\n</think>\n\n' + message['content'] + '<|im_end|>\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\n\n</think>\n\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)
# Where the assistant's reply starts under HYBRID_THINKING_TEMPLATE when thinking is off.
THINKING_OFF_REPLY_START = "<|im_start|>assistant\n<think>\n\n</think>\n\n"


# The BPE merges are learned from this text, so common words of the KGFact / KGFunc prompts
# become single tokens; any other text still round-trips through the 256 byte tokens.
_CORPUS = r"""
Who employs Zorvath Kellen? Zorvath Kellen is employed by Ormavel Dynamics. \boxed{Ormavel Dynamics}
Where does Mira Solend reside? Mira Solend resides in Quellport. The answer is Quellport.
This question comes from a new knowledge base. The answer is given below as a reference solution.
Now answer the question and put your final answer within \boxed{}. Think step by step.
What is the value of A(328)? The digits of 328 are 3, 2 and 8. Their sum is 13, so the answer
is 13 times 8 = 104. A(328) = 104. \boxed{104} Let me compute the function of the input number.
the of and to in is was for that with as by on from at it an be this which are or his her their
question answer knowledge base new reference solution correct final step value number digits sum
product minimum maximum remainder company city person organization location founded located born
"""


def _byte_alphabet() -> list[str]:
    """The printable stand-ins that byte-level BPE (GPT-2) uses for the 256 bytes."""
    from tokenizers import pre_tokenizers

    return sorted(pre_tokenizers.ByteLevel.alphabet())


def _learn_merges(num_merges: int) -> list[tuple[str, str]]:
    """Plain BPE on ``_CORPUS``, ties broken by the pair itself, so the result is deterministic."""
    from tokenizers import pre_tokenizers

    splitter = pre_tokenizers.ByteLevel(add_prefix_space=False)
    words = Counter(w for w, _ in splitter.pre_tokenize_str(_CORPUS))
    pieces = {w: list(w) for w in words}
    merges: list[tuple[str, str]] = []
    while len(merges) < num_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for w, count in words.items():
            seq = pieces[w]
            for pair in pairwise(seq):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for w in words:
            seq, out, i = pieces[w], [], 0
            while i < len(seq):
                if i + 1 < len(seq) and (seq[i], seq[i + 1]) == best:
                    out.append(seq[i] + seq[i + 1])
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            pieces[w] = out
    return merges


def build_tiny_tokenizer(vocab_size: int = 384, *, chat_template: str = CHATML_TEMPLATE):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with ChatML specials; EOS = pad = ``<|im_end|>``.

    ``chat_template``: ChatML by default; ``HYBRID_THINKING_TEMPLATE`` for a Qwen3-style one.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = _byte_alphabet()
    base = len(SPECIAL_TOKENS) + len(alphabet)
    if vocab_size < base:
        raise ValueError(f"vocab_size must be at least {base} (specials + 256 bytes)")
    merges = _learn_merges(vocab_size - base)
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *alphabet])}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        chat_template=chat_template,
        model_max_length=2048,
    )


def build_tiny_model(
    folder: str | Path,
    *,
    seed: int = 0,
    vocab_size: int = 384,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 2,
    tie_embeddings: bool = False,
    init_std: float = 0.3,
    eos_boost: float = 2.0,
    chat_template: str = CHATML_TEMPLATE,
) -> Path:
    """Write a tiny random Llama chat model + tokenizer to ``folder``; same seed, same bytes.

    ``chat_template`` changes only the tokenizer's template (``HYBRID_THINKING_TEMPLATE`` makes a
    hybrid-thinking model); the weights depend on the seed and sizes alone.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    tokenizer = build_tiny_tokenizer(vocab_size, chat_template=chat_template)
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        head_dim=64,  # vLLM's CPU attention rejects smaller heads
        max_position_embeddings=2048,
        initializer_range=init_std,
        tie_word_embeddings=tie_embeddings,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    # A private generator state: the caller's global RNG is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM._from_config(config, dtype=torch.float32)
    with torch.no_grad():
        head = model.get_output_embeddings().weight
        head[eos_id] *= eos_boost
    model.generation_config = GenerationConfig(
        do_sample=False, eos_token_id=eos_id, pad_token_id=eos_id, bos_token_id=None
    )
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
