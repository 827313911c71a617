"""Where MEMIT touches a Llama/Qwen-style model: ``model.model.layers[l].mlp.down_proj``.

Two forward hooks do all the reading and writing of activations: one records the input of
``down_proj`` (the key k), the other adds a vector to a decoder layer's output at chosen token
positions (the residual delta of the target search). A forward that only needs early layers
stops with ``StopForward`` once the last hooked layer has run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from mixsd_train._errors import TrainError

__all__ = [
    "StopForward",
    "add_at_positions",
    "decoder_layers",
    "down_proj",
    "down_proj_input",
    "encode_prompts",
    "layer_output",
    "record_down_proj_inputs",
    "replay_from",
]


class StopForward(Exception):
    """Raised inside a hook to skip the layers a measurement does not need."""


def _not_editable(model: Any) -> TrainError:
    return TrainError(
        "MEMIT edits Llama/Qwen-style models (model.model.layers[l].mlp.down_proj); "
        f"{type(model).__name__} has no such modules"
    )


def decoder_layers(model: Any) -> Any:
    """``model.model.layers``; anything else is not a model MEMIT knows how to edit."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise _not_editable(model)
    return layers


def down_proj(model: Any, layer: int) -> torch.nn.Linear:
    module = getattr(getattr(decoder_layers(model)[layer], "mlp", None), "down_proj", None)
    if not isinstance(module, torch.nn.Linear):
        raise _not_editable(model)
    return module


@contextmanager
def record_down_proj_inputs(
    model: Any,
    layers: Sequence[int],
    sink: Callable[[int, torch.Tensor], None],
    *,
    stop_after: int | None = None,
) -> Iterator[None]:
    """Call ``sink(layer, input)`` with each listed layer's down_proj input (B, T, d_in).

    ``stop_after``: raise StopForward right after that layer's down_proj input is seen.
    """

    def hook_for(layer: int) -> Callable[..., None]:
        def hook(module: Any, args: tuple[torch.Tensor, ...]) -> None:
            sink(layer, args[0])
            if layer == stop_after:
                raise StopForward

        return hook

    handles = [
        down_proj(model, layer).register_forward_pre_hook(hook_for(layer)) for layer in layers
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def down_proj_input(model: Any, layer: int, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The input of layer ``layer``'s down_proj (B, T, d_in); the layers above are not run."""
    seen: list[torch.Tensor] = []
    with (
        record_down_proj_inputs(model, [layer], lambda _, x: seen.append(x), stop_after=layer),
        contextlib.suppress(StopForward),
    ):
        model.model(input_ids=ids, attention_mask=mask, use_cache=False)
    return seen[0]


def layer_output(model: Any, layer: int, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The output of decoder layer ``layer`` (B, T, d); the layers above it are not run."""
    seen: list[torch.Tensor] = []

    def hook(module: Any, args: Any, output: Any) -> None:
        seen.append(output[0] if isinstance(output, tuple) else output)
        raise StopForward

    handle = decoder_layers(model)[layer].register_forward_hook(hook)
    try:
        with contextlib.suppress(StopForward):
            model.model(input_ids=ids, attention_mask=mask, use_cache=False)
    finally:
        handle.remove()
    return seen[0]


@contextmanager
def add_at_positions(
    model: Any, layer: int, rows: torch.Tensor, positions: torch.Tensor, delta: torch.Tensor
) -> Iterator[None]:
    """Add ``delta`` (d,) to the output of decoder layer ``layer`` at (rows[i], positions[i])."""

    def hook(module: Any, args: Any, output: Any) -> Any:
        hidden = output[0] if isinstance(output, tuple) else output
        bump = torch.zeros_like(hidden)
        bump[rows, positions] = delta.to(hidden.dtype)  # differentiable w.r.t. delta
        hidden = hidden + bump
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handle = decoder_layers(model)[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


class _Replay(torch.nn.Module):
    """Stands in for a decoder layer whose output is already known (or for a skipped one)."""

    def __init__(self, original: Any, output: torch.Tensor | None) -> None:
        super().__init__()
        self.output = output
        # Some models route masks by layer type (Qwen3: sliding vs full attention).
        if hasattr(original, "attention_type"):
            self.attention_type = original.attention_type

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.output if self.output is not None else hidden_states


@contextmanager
def replay_from(model: Any, layer: int, output: torch.Tensor) -> Iterator[None]:
    """Forwards inside skip layers 0..layer, using ``output`` as layer ``layer``'s output.

    The target search runs the same prompts 25 times and only the layers above the edited one
    see the delta: replaying the frozen part saves (layer + 1) / depth of every forward.
    Hooks registered on ``decoder_layers(model)[layer]`` inside the block still apply.
    """
    layers = decoder_layers(model)
    originals = [layers[i] for i in range(layer + 1)]
    for i, original in enumerate(originals):
        layers[i] = _Replay(original, output if i == layer else None)
    try:
        yield
    finally:
        for i, original in enumerate(originals):
            layers[i] = original


def encode_prompts(
    tokenizer: Any, texts: Sequence[str], subject_ends: Sequence[int]
) -> tuple[list[list[int]], list[int]]:
    """Token ids of each text and the index of the token holding its subject's last character.

    Offsets come from the fast tokenizer, so the position is right whatever the tokenizer does
    around the subject (leading spaces, merges, an added BOS).
    """
    if not getattr(tokenizer, "is_fast", False):
        raise TrainError("MEMIT needs a fast tokenizer (character offsets) to find the subject")
    batch = tokenizer(list(texts), add_special_tokens=True)
    ids, positions = [], []
    for i, (text, end) in enumerate(zip(texts, subject_ends, strict=True)):
        token = batch.char_to_token(i, end - 1)
        if token is None:
            raise TrainError(f"cannot find the subject's last token in {text!r}")
        ids.append(list(batch["input_ids"][i]))
        positions.append(int(token))
    return ids, positions
