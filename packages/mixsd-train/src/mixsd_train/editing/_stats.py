"""Second-moment statistics C = E[k k^T] of the down_proj inputs, over an offline corpus.

MEMIT's update keeps the layer's behaviour on "all other" keys by weighting them with C, which
the paper estimates over 100k Wikipedia samples. The hub is not reachable here, so the default
corpus is text that every Python ships: the English prose of ``pydoc_data.topics`` (the
language reference behind ``help('topics')``, ~0.2 MB of prose = ~48k SmolLM2 tokens; code
blocks and heading rules dropped). It is natural, varied technical English, fixed per Python
version, and needs no download. ``pydoc`` keeps the code blocks too (~2x the tokens), and any
UTF-8 ``.txt`` file can be given instead (a Wikipedia dump, where one has it).

The text is tokenised once and cut into ``samples`` consecutive chunks of ``seq_len`` tokens (no
padding, so every position is a real key). Per batch, k^T k is formed in fp32 and added to an
fp64 sum, so precision does not drift over many tokens. C = sum / token count.

Cache: one safetensors file per layer under ``$MIXSD_HOME/memit-stats/``, named by a hash of the
weights that shape that layer's keys (embeddings + layers 0..l), the corpus chunks' token hash,
the corpus name and the sample count. A different model, tokenizer, corpus or count never reuses
a file; the same ones always do (the model is not run at all then).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mixsd_base import atomic_path, read_text
from mixsd_train._errors import TrainError
from mixsd_train.editing._hooks import StopForward, decoder_layers, record_down_proj_inputs

__all__ = [
    "CORPORA",
    "corpus_chunks",
    "corpus_text",
    "layer_fingerprints",
    "second_moments",
    "stats_dir",
]

CORPORA = ("pydoc-prose", "pydoc")
_RULE = re.compile(r"[*=\-^~#]+")


def corpus_text(name: str) -> str:
    """The raw text of a named corpus or a UTF-8 text file."""
    if name in CORPORA:
        from pydoc_data.topics import topics

        pages = [topics[key] for key in sorted(topics)]
        if name == "pydoc":
            return "\n\n".join(pages)
        return "\n".join(p for page in pages for p in _prose_paragraphs(page))
    path = Path(name).expanduser()
    if not path.is_file():
        raise TrainError(
            f"mom2_corpus {name!r} is neither one of {', '.join(CORPORA)} nor a text file "
            f"({path.absolute()} does not exist)"
        )
    return read_text(path.absolute(), what="corpus file")


def _prose_paragraphs(page: str) -> list[str]:
    """Paragraphs of running text: indented blocks (code, grammar) and heading rules dropped."""
    out = []
    for block in re.split(r"\n\s*\n", page):
        lines = [line for line in block.split("\n") if not _RULE.fullmatch(line.strip())]
        if not lines or any(line.startswith(" ") for line in lines):
            continue
        text = " ".join(line.strip() for line in lines)
        if len(text.split()) >= 8:  # drops headings and one-line labels
            out.append(text)
    return out


def corpus_chunks(tokenizer: Any, name: str, samples: int, seq_len: int) -> torch.Tensor:
    """``(samples, seq_len)`` token ids: the corpus cut into consecutive fixed-length chunks."""
    # Line by line (newline kept): the tokenizer warns about, and some cap, very long inputs.
    lines = corpus_text(name).splitlines(keepends=True)
    ids = [i for row in tokenizer(lines, add_special_tokens=False)["input_ids"] for i in row]
    available = len(ids) // seq_len
    if available < samples:
        raise TrainError(
            f"mom2_corpus {name!r} holds {len(ids)} tokens = {available} chunks of "
            f"{seq_len}, fewer than mom2_samples={samples}; lower mom2_samples or "
            "mom2_seq_len, or give a larger text file"
        )
    return torch.tensor(ids[: samples * seq_len], dtype=torch.long).view(samples, seq_len)


def stats_dir(configured: str | None = None) -> Path:
    if configured:
        return Path(configured).expanduser()
    from mixsd_core import mixsd_home

    return mixsd_home() / "memit-stats"


def layer_fingerprints(model: Any, layers: Sequence[int]) -> dict[int, str]:
    """sha256 of the weights that determine layer l's down_proj inputs, for each listed l."""
    digest = hashlib.sha256()
    _update(digest, "embed", model.get_input_embeddings().weight)
    out: dict[int, str] = {}
    blocks = decoder_layers(model)
    for index in range(max(layers) + 1):
        for name, tensor in sorted(blocks[index].state_dict().items()):
            _update(digest, f"{index}.{name}", tensor)
        if index in layers:
            out[index] = digest.copy().hexdigest()
    return out


def _update(digest: Any, name: str, tensor: torch.Tensor) -> None:
    flat = tensor.detach().to("cpu").contiguous().view(-1)
    digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
    digest.update(flat.view(torch.uint8).numpy().tobytes())


def _cache_path(folder: Path, fingerprint: str, layer: int, tag: str) -> Path:
    return folder / f"{fingerprint[:24]}-layer{layer}-{tag}.safetensors"


def second_moments(
    model: Any,
    tokenizer: Any,
    layers: Sequence[int],
    *,
    corpus: str = "pydoc-prose",
    samples: int = 256,
    seq_len: int = 128,
    batch_size: int = 16,
    cache: str | Path | None = None,
    progress: bool = True,
) -> tuple[dict[int, torch.Tensor], dict[int, str]]:
    """C (fp64, d_in x d_in, on the model's device) for each layer, and the cache file of each.

    Layers found in the cache are loaded; the others are measured in one pass that stops after
    the deepest missing layer.
    """
    from safetensors.torch import load_file, save_file

    chunks = corpus_chunks(tokenizer, corpus, samples, seq_len)
    chunk_hash = hashlib.sha256(chunks.numpy().tobytes()).hexdigest()[:16]
    corpus_name = corpus if corpus in CORPORA else "file"
    tag = f"{corpus_name}-{samples}x{seq_len}-{chunk_hash}"
    folder = stats_dir(str(cache) if cache is not None else None)
    fingerprints = layer_fingerprints(model, layers)
    paths = {layer: _cache_path(folder, fingerprints[layer], layer, tag) for layer in layers}
    device = next(model.parameters()).device
    result = {
        layer: load_file(path)["second_moment"].to(device)
        for layer, path in paths.items()
        if path.is_file()
    }
    missing = [layer for layer in layers if layer not in result]
    if missing:
        sums = _measure(model, chunks, missing, batch_size, progress)
        for layer in missing:
            moment = sums[layer] / (samples * seq_len)
            metadata = {
                "layer": str(layer),
                "corpus": corpus,
                "tokens": str(samples * seq_len),
                "model_fingerprint": fingerprints[layer],
                "model": str(getattr(model, "name_or_path", "")),
            }
            # Written beside the target and renamed: a killed run never leaves half a file.
            with atomic_path(paths[layer]) as tmp:
                save_file({"second_moment": moment.cpu().contiguous()}, str(tmp), metadata=metadata)
            result[layer] = moment.to(device)
    return result, {layer: str(path) for layer, path in paths.items()}


def _measure(
    model: Any, chunks: torch.Tensor, layers: Sequence[int], batch_size: int, progress: bool
) -> dict[int, torch.Tensor]:
    """Sums of k k^T (fp64) over every token of ``chunks``, for each layer."""
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    sums: dict[int, torch.Tensor] = {}

    def add(layer: int, keys: torch.Tensor) -> None:
        flat = keys.reshape(-1, keys.shape[-1]).float()
        product = (flat.T @ flat).double()  # fp32 over one batch, fp64 across batches
        sums[layer] = sums[layer] + product if layer in sums else product

    starts = range(0, len(chunks), batch_size)
    bar = tqdm(starts, desc="memit: second moments", unit="batch", disable=not progress)
    with torch.no_grad(), record_down_proj_inputs(model, layers, add, stop_after=max(layers)):
        for start in bar:
            ids = chunks[start : start + batch_size].to(device)
            with contextlib.suppress(StopForward):  # the layers above max(layers) are not needed
                model.model(input_ids=ids, use_cache=False)
    return sums
