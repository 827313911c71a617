"""The diagonal empirical Fisher: F = (1/N) Σ_n (∇θ ℓ_n)², per parameter, accumulated in fp32.

As the paper's Appendix E.1: ℓ_n is the NLL of sample n's response tokens *summed* over them
(prompt tokens masked; ``sample_nll``, ``reduction="sum"``; "mean" is kept as an option), its
gradient is taken at batch size 1 in the model's dtype, cast to fp32 before squaring (no
underflow of bf16 squares), summed in fp32 and averaged over the N samples. Averaged over
samples, ℓ_n is also the ΔNLL (sample mean) measure of ``fishertools._compare``. Two
estimators give the same numbers: ``fisher_loop`` (one ordinary backward per sample, the paper's
procedure and the default) and ``fisher_vmap`` (torch.func: ``vmap(grad(...))`` over chunks of
samples). Memory: see ``fishertools._memory``.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.func import functional_call, grad, vmap
from tqdm.auto import tqdm

from fishertools._config import FisherConfig, FisherError
from fishertools._data import EncodedSample, encode_records, read_records
from fishertools._memory import DTYPE_BYTES, MemoryPlan, memory_plan
from fishertools._models import load_model, load_tokenizer, select_parameters
from mixsd_base import atomic_path, file_sha256, package_versions, write_text
from mixsd_core import pad_right, token_nll

__all__ = [
    "DEFAULT_REDUCTION",
    "FisherResult",
    "compute_fisher",
    "fisher_loop",
    "fisher_vmap",
    "length_chunks",
    "load_fisher",
    "sample_nll",
    "save_fisher",
]

FORMAT = "fishertools.fisher/1"
DEFAULT_REDUCTION = "sum"  # Appendix E.1: "the sum-reduced log-likelihood over target tokens"


def sample_nll(
    logits: torch.Tensor,
    input_ids: torch.Tensor,
    loss_mask: torch.Tensor,
    reduction: str = DEFAULT_REDUCTION,
) -> torch.Tensor:
    """ℓ_n: the NLL of the masked tokens of one sequence, logits (T, V), ids (T,), mask (T,) ->
    scalar; ``reduction`` "sum" (over its response tokens, the paper's) or "mean".

    The per-token NLL is mixsd_core.token_nll (position t-1 predicts token t, fp32 log-softmax);
    this is only the per-sample reduction, differentiable, so the Fisher takes its gradient.
    """
    nll = token_nll(logits, input_ids)
    mask = loss_mask[1:].to(nll.dtype)
    total = (nll * mask).sum()
    return total / mask.sum() if reduction == "mean" else total


@contextmanager
def _frozen(model: torch.nn.Module, trainable: set[str] | None) -> Iterator[None]:
    """Eval mode, and requires_grad only on ``trainable`` (none for torch.func); restored after."""
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    was_training = model.training
    model.eval()  # no dropout: per-sample gradients must be deterministic
    for name, p in model.named_parameters():
        p.requires_grad_(trainable is not None and name in trainable)
    try:
        yield
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(flags[name])
        model.train(was_training)


@contextmanager
def _eager_attention(model: torch.nn.Module) -> Iterator[None]:
    """Eager attention for the duration, the model's own implementation restored after.

    Eager attention is plain matmuls and a softmax, which vmap batches. SDPA (the transformers
    default when a model is loaded elsewhere) has no batching rule on CPU, so inside vmap torch
    runs it, forward and backward, one sample at a time ("There is a performance drop because
    we have not yet implemented the batching rule for
    aten::_scaled_dot_product_flash_attention_for_cpu"). Both compute the same attention, to
    float rounding. Models without ``set_attn_implementation`` (plain modules) are left alone.
    """
    config = getattr(model, "config", None)
    before = getattr(config, "_attn_implementation", None)
    switch = getattr(model, "set_attn_implementation", None)
    if before is None or before == "eager" or switch is None:
        yield
        return
    switch("eager")
    try:
        yield
    finally:
        switch(before)


def _new_accumulator(model: torch.nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {
        n: torch.zeros(params[n].shape, dtype=torch.float32, device=params[n].device) for n in names
    }


def fisher_loop(
    model: torch.nn.Module,
    samples: list[EncodedSample],
    names: list[str],
    *,
    reduction: str = DEFAULT_REDUCTION,
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """One forward/backward per sample (batch size 1, gradients in the model's dtype), each
    gradient cast to fp32, squared and accumulated; averaged at the end."""
    acc = _new_accumulator(model, names)
    params = dict(model.named_parameters())
    device = next(iter(acc.values())).device
    with _frozen(model, set(names)):
        for sample in tqdm(samples, desc="fisher (loop)", disable=not progress):
            for name in names:
                params[name].grad = None
            ids = sample.input_ids.to(device)
            logits = model(input_ids=ids[None], use_cache=False).logits[0]
            sample_nll(logits, ids, sample.loss_mask.to(device), reduction).backward()
            for name in names:
                grad_ = params[name].grad
                assert grad_ is not None  # requires_grad is on for every selected name
                g = grad_.float()
                acc[name].addcmul_(g, g)
        for name in names:
            params[name].grad = None
    return {n: a.div_(len(samples)) for n, a in acc.items()}


def length_chunks(lengths: list[int], chunk_size: int, max_padding: float) -> list[list[int]]:
    """Indices grouped into vmap chunks: shortest first, at most ``chunk_size`` per chunk.

    A chunk is closed early when taking the next (longer) sample would make its right padding
    more than ``max_padding`` of its real tokens: padded positions cost the same work as real
    ones (more in attention), and a short chunk costs little (chunks beyond ~8 gain little).
    """
    chunks: list[list[int]] = []
    chunk: list[int] = []
    tokens = 0
    for index in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        length = lengths[index]
        padded = (len(chunk) + 1) * length  # the new sample is the longest so far
        if chunk and (len(chunk) >= chunk_size or padded > (1 + max_padding) * (tokens + length)):
            chunks.append(chunk)
            chunk, tokens = [], 0
        chunk.append(index)
        tokens += length
    return [*chunks, chunk] if chunk else chunks


def fisher_vmap(
    model: torch.nn.Module,
    samples: list[EncodedSample],
    names: list[str],
    *,
    chunk_size: int = 8,
    max_padding: float = 0.1,
    reduction: str = DEFAULT_REDUCTION,
    eager_attention: bool = True,
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """Vectorised estimator: per-sample gradients of a chunk at once with ``vmap(grad(...))``.

    Each chunk is right-padded with no attention mask: real tokens only attend to earlier
    positions, so pads (always later, loss mask 0) cannot change them; inside vmap every sample
    runs as a batch of one, so the gradient is exactly the batch-size-1 gradient. Samples are sorted by length and
    a chunk holds at most ``max_padding`` padding (see ``length_chunks``); the sum does not
    depend on the order. With ``eager_attention`` (the default) a Hugging Face model runs with
    eager attention for the call (see ``_eager_attention``); ``False`` keeps its own, e.g. to
    measure the difference.
    """
    acc = _new_accumulator(model, names)
    params = dict(model.named_parameters())
    device = next(iter(acc.values())).device
    chosen = {n: params[n].detach() for n in names}

    def loss(theta: dict[str, torch.Tensor], ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # Unselected parameters stay the module's own (frozen) tensors; tied weights stay tied.
        logits = functional_call(
            model, theta, args=(), kwargs={"input_ids": ids[None], "use_cache": False}
        ).logits[0]
        return sample_nll(logits, ids, mask, reduction)

    per_sample_grads = vmap(grad(loss), in_dims=(None, 0, 0))
    chunks = length_chunks([len(s.input_ids) for s in samples], chunk_size, max_padding)
    with (
        _frozen(model, None),
        _eager_attention(model) if eager_attention else nullcontext(),
        tqdm(total=len(samples), desc="fisher (vmap)", disable=not progress) as bar,
    ):
        for indices in chunks:
            chunk = [samples[i] for i in indices]
            ids, _ = pad_right([s.input_ids.tolist() for s in chunk], 0, device)
            mask, _ = pad_right([s.loss_mask.long().tolist() for s in chunk], 0, device)
            grads = per_sample_grads(chosen, ids, mask.float())
            for name in names:
                for g in grads[name]:  # one sample at a time: no (chunk x tensor) temporary
                    g = g.float()
                    acc[name].addcmul_(g, g)
            del grads
            bar.update(len(chunk))
    return {n: a.div_(len(samples)) for n, a in acc.items()}


@dataclass
class FisherResult:
    """A diagonal Fisher (parameter name -> fp32 tensor) and the manifest that describes it."""

    fisher: dict[str, torch.Tensor]
    manifest: dict[str, Any]

    def save(self, path: str | Path) -> Path:
        return save_fisher(self, path)


def compute_fisher(
    model: str | Path | torch.nn.Module,
    data: str | Path,
    config: FisherConfig | None = None,
    *,
    tokenizer: Any = None,
    progress: bool = False,
) -> FisherResult:
    """Diagonal empirical Fisher of ``model`` (a folder, hub id or loaded model) on ``data``."""
    config = config or FisherConfig()
    data = Path(data)
    records = read_records(data, config.samples)  # validate the data before loading a model
    model_name = str(model) if isinstance(model, str | Path) else getattr(model, "name_or_path", "")
    tokenizer = tokenizer or load_tokenizer(model)
    net = (
        load_model(model, dtype=config.dtype, device=config.device)
        if isinstance(model, str | Path)
        else model
    )
    samples = encode_records(records, tokenizer, max_length=config.max_length, source=str(data))
    names = select_parameters(net, config.include, config.exclude)
    plan = _check_memory(net, names, config)
    began = time.perf_counter()
    if config.method == "vmap":
        fisher = fisher_vmap(
            net,
            samples,
            names,
            chunk_size=config.chunk_size,
            reduction=config.reduction,
            progress=progress,
        )
    else:
        fisher = fisher_loop(net, samples, names, reduction=config.reduction, progress=progress)
    seconds = time.perf_counter() - began
    fisher = {n: f.cpu() for n, f in fisher.items()}
    total = sum(f.numel() for f in fisher.values())
    manifest = {
        "format": FORMAT,
        "model": model_name,
        "data": str(data.absolute()),
        "data_sha256": file_sha256(data),
        "samples": len(samples),
        "response_tokens": int(sum(s.loss_mask.sum().item() for s in samples)),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "num_tensors": len(fisher),
        "num_params": total,
        "mean_fisher": float(sum(f.double().sum() for f in fisher.values()) / total),
        "seconds": round(seconds, 3),
        "memory": {
            "planned_bytes": asdict(plan) | {"total": plan.total},
            # measured on CUDA only (torch keeps no peak for the CPU allocator)
            "peak_bytes": _peak_bytes(net),
        },
        "versions": package_versions(
            "fishertools",
            "mixsd-base",
            "mixsd-core",
            "transformers",
            # torch's own string keeps its build tag (+cu130), which the metadata drops
            extra=lambda: {"torch": torch.__version__, "python": platform.python_version()},
        ),
    }
    return FisherResult(fisher, manifest)


def _check_memory(net: torch.nn.Module, names: list[str], config: FisherConfig) -> MemoryPlan:
    """The memory plan of this call (weights in the model's own dtype); on CUDA, an error before
    any work when the gradients and accumulator cannot fit beside the loaded model."""
    params = dict(net.named_parameters())
    dtype = str(next(iter(params.values())).dtype).removeprefix("torch.")
    plan = memory_plan(
        sum(p.numel() for p in params.values()),
        dtype if dtype in DTYPE_BYTES else "float32",
        method=config.method,
        chunk_size=config.chunk_size,
        selected=sum(params[n].numel() for n in names),
    )
    device = params[names[0]].device
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        need = plan.gradients + plan.accumulator
        if need > free:
            raise FisherError(
                f"the Fisher needs {need / 1e9:.1f} GB for gradients and accumulator beside the "
                f"model but {device} has {free / 1e9:.1f} GB free ({plan.describe()}); use "
                "method 'loop', a smaller chunk_size or include/exclude patterns",
                field="method",
            )
        torch.cuda.reset_peak_memory_stats(device)
    return plan


def _peak_bytes(net: torch.nn.Module) -> int | None:
    device = next(net.parameters()).device
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


def manifest_path(path: Path) -> Path:
    """``fisher/BASE.safetensors`` -> ``fisher/BASE.manifest.json``."""
    return path.with_name(path.name.removesuffix(".safetensors") + ".manifest.json")


def save_fisher(result: FisherResult, path: str | Path) -> Path:
    """Write the tensors (manifest embedded in the metadata) and a JSON manifest beside them.

    Both are written atomically, the safetensors file last, so an interrupted save never leaves
    a file that looks complete.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise FisherError(f"the Fisher output must end in .safetensors: {path}")
    text = json.dumps(result.manifest, indent=2, sort_keys=True)
    tensors = {n: f.contiguous() for n, f in result.fisher.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"fishertools": text})
        write_text(manifest_path(path), text + "\n")
    return path


def load_fisher(path: str | Path) -> FisherResult:
    """Read a Fisher written by ``save_fisher`` (the manifest comes from the file's metadata)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FisherError("Fisher file not found", path=path.absolute())
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            fisher = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise FisherError(f"{path}: not a readable safetensors file ({exc})") from None
    if "fishertools" not in meta:
        raise FisherError(f"{path}: no fishertools manifest in its metadata (not a Fisher file?)")
    return FisherResult(fisher, json.loads(meta["fishertools"]))
