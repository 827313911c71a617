import itertools
import json
import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from fishertools import (
    FisherConfig,
    FisherError,
    compute_fisher,
    encode_records,
    fisher_loop,
    fisher_vmap,
    load_fisher,
    memory_plan,
    read_records,
    select_parameters,
)
from fishertools._data import EncodedSample
from fishertools._fisher import length_chunks


def _max_rel_err(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(((a[n] - b[n]).abs().max() / a[n].abs().max()).item() for n in a)


def test_vmap_equals_loop(tiny_eager_lm, data_file: Path):
    model, tokenizer = tiny_eager_lm
    samples = encode_records(read_records(data_file), tokenizer, max_length=512)
    names = select_parameters(model)
    loop = fisher_loop(model, samples, names)
    # chunk 3 over 7 samples of different lengths: padding and a short last chunk
    vec = fisher_vmap(model, samples, names, chunk_size=3, max_padding=math.inf)
    assert _max_rel_err(loop, vec) < 1e-5
    assert _max_rel_err(loop, fisher_vmap(model, samples, names, chunk_size=3)) < 1e-5
    assert all(f.dtype == torch.float32 and (f >= 0).all() for f in vec.values())
    assert all(p.requires_grad and p.grad is None for p in model.parameters())  # restored


def test_length_chunks_cap_size_and_padding():
    lengths = [50, 10, 11, 12, 30, 10, 13, 100]
    # shortest first, at most 3 a chunk, no limit on padding
    assert length_chunks(lengths, 3, math.inf) == [[1, 5, 2], [3, 6, 4], [0, 7]]
    # 10% padding at most: 10,10,11 (3 x 11 = 33 <= 1.1 x 31) but not with 12 (48 > 1.1 x 43)
    chunks = length_chunks(lengths, 8, 0.1)
    assert chunks == [[1, 5, 2], [3, 6], [4], [0], [7]]
    for chunk in chunks:
        tokens = [lengths[i] for i in chunk]
        assert len(chunk) * max(tokens) <= 1.1 * sum(tokens)
    assert length_chunks([7, 7, 7], 2, 0.0) == [[0, 1], [2]]
    assert length_chunks([], 4, 0.1) == []


def test_vmap_switches_sdpa_model_to_eager_and_back(
    tiny_model_dir: Path, tiny_eager_lm, data_file: Path
):
    """A model loaded elsewhere has SDPA, which vmap runs per sample on CPU: fisher_vmap switches
    it to eager for the call (same numbers as the eager loop), then restores it."""
    from fishertools._models import load_model

    eager, tokenizer = tiny_eager_lm
    model = load_model(tiny_model_dir)
    model.set_attn_implementation("sdpa")
    samples = encode_records(read_records(data_file, 4), tokenizer, max_length=512)
    names = select_parameters(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vec = fisher_vmap(model, samples, names, chunk_size=2)
    assert not [w for w in caught if "batching rule" in str(w.message)]
    assert model.config._attn_implementation == "sdpa"  # restored
    assert _max_rel_err(fisher_loop(eager, samples, names), vec) < 1e-5
    # The loop keeps the model's SDPA: the same Fisher up to SDPA's own rounding (~2e-5 on the
    # tiny model, whose large init makes attention sharp).
    sdpa_loop = fisher_loop(model, samples, names)
    assert _max_rel_err(sdpa_loop, vec) < 1e-4

    # Without the switch SDPA falls back to a per-sample loop inside vmap (same kernel, slower).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = fisher_vmap(model, samples, names, chunk_size=2, eager_attention=False)
    assert [w for w in caught if "batching rule" in str(w.message)]
    assert _max_rel_err(sdpa_loop, kept) < 1e-5


def test_eager_switch_restored_after_an_error(
    tiny_model_dir: Path, tiny_tokenizer, data_file: Path
):
    from fishertools._models import load_model

    tokenizer = tiny_tokenizer
    model = load_model(tiny_model_dir)
    model.set_attn_implementation("sdpa")
    seen = []
    forward = model.forward

    def failing_forward(*args, **kwargs):
        seen.append(model.config._attn_implementation)
        raise RuntimeError("boom")

    model.forward = failing_forward
    samples = encode_records(read_records(data_file, 1), tokenizer, max_length=512)
    with pytest.raises(RuntimeError, match="boom"):
        fisher_vmap(model, samples, ["model.norm.weight"])
    model.forward = forward
    assert seen == ["eager"] and model.config._attn_implementation == "sdpa"
    assert all(p.requires_grad for p in model.parameters())


def test_sum_reduction_scales_single_sample(tiny_eager_lm, data_file: Path):
    model, tokenizer = tiny_eager_lm
    (sample,) = encode_records(read_records(data_file, 1), tokenizer, max_length=512)
    names = ["model.norm.weight"]
    mean = fisher_vmap(model, [sample], names, reduction="mean")[names[0]]
    total = fisher_vmap(model, [sample], names, reduction="sum")[names[0]]
    n = sample.loss_mask[1:].sum()
    torch.testing.assert_close(total, mean * n**2, rtol=1e-5, atol=1e-5 * total.abs().max().item())


class TwoParam(torch.nn.Module):
    """Vocabulary {0, 1}: logits of the next token after x are (a·x, b)."""

    def __init__(self, a: float, b: float) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(a))
        self.b = torch.nn.Parameter(torch.tensor(b))

    def forward(self, input_ids: torch.Tensor, use_cache: bool = False) -> SimpleNamespace:
        x = input_ids.float()
        return SimpleNamespace(logits=torch.stack([self.a * x, self.b.expand_as(x)], dim=-1))


def test_two_parameter_model_by_hand():
    a, b = 0.5, -0.25
    model = TwoParam(a, b)
    # (previous token x, next token y); the loss is on y only
    pairs = [(1, 0), (1, 1), (3, 1)]
    samples = [
        EncodedSample(torch.tensor([x, y]), torch.tensor([0.0, 1.0]), i)
        for i, (x, y) in enumerate(pairs)
    ]
    grads = []
    for x, y in pairs:
        p1 = 1 / (1 + math.exp(a * x - b))  # softmax(a·x, b)[1]
        p0 = 1 - p1
        # d(-log p_y)/dz = p - onehot(y); z0 = a·x, z1 = b
        grads.append(((p0 - (y == 0)) * x, p1 - (y == 1)))
    fa = sum(g[0] ** 2 for g in grads) / 3
    fb = sum(g[1] ** 2 for g in grads) / 3
    for fisher in (
        fisher_loop(model, samples, ["a", "b"]),
        fisher_vmap(model, samples, ["a", "b"], chunk_size=2),
    ):
        assert fisher["a"].item() == pytest.approx(fa, rel=1e-6)
        assert fisher["b"].item() == pytest.approx(fb, rel=1e-6)


def test_include_exclude_patterns(tiny_eager_lm, data_file: Path):
    model, _ = tiny_eager_lm
    names = select_parameters(model, ["model.layers.*.mlp.*"], ["*down_proj*"])
    assert names and all(".mlp." in n and "down_proj" not in n for n in names)
    regex = select_parameters(model, [r"re:layers\.1\.self_attn\.(q|v)_proj"])
    assert regex == [
        "model.layers.1.self_attn.q_proj.weight",
        "model.layers.1.self_attn.v_proj.weight",
    ]
    with pytest.raises(FisherError, match="no parameter matches"):
        select_parameters(model, ["nothing*"])


def test_restricted_fisher_matches_full(tiny_model_dir: Path, tiny_eager_lm, data_file: Path):
    model, tokenizer = tiny_eager_lm
    full = compute_fisher(model, data_file, FisherConfig(samples=3), tokenizer=tokenizer)
    part = compute_fisher(
        model, data_file, FisherConfig(samples=3, include=["*.mlp.up_proj.*"]), tokenizer=tokenizer
    )
    assert sorted(part.fisher) == [
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.1.mlp.up_proj.weight",
    ]
    for name, f in part.fisher.items():
        torch.testing.assert_close(
            f, full.fisher[name], rtol=1e-5, atol=1e-5 * f.abs().max().item()
        )
    assert part.manifest["config"]["include"] == ["*.mlp.up_proj.*"]


def test_save_load_roundtrip_with_manifest(tiny_model_dir: Path, data_file: Path, tmp_path: Path):
    result = compute_fisher(tiny_model_dir, data_file, FisherConfig(samples=2, chunk_size=2))
    path = result.save(tmp_path / "fisher" / "tiny.safetensors")
    manifest = json.loads((tmp_path / "fisher" / "tiny.manifest.json").read_text())
    assert manifest["samples"] == 2 and manifest["config"]["chunk_size"] == 2
    assert len(manifest["data_sha256"]) == 64 and "torch" in manifest["versions"]
    loaded = load_fisher(path)
    assert loaded.manifest == manifest
    for name, f in result.fisher.items():
        assert torch.equal(loaded.fisher[name], f)
    assert not list((tmp_path / "fisher").glob("*.tmp"))


def test_load_fisher_rejects_foreign_files(tmp_path: Path):
    with pytest.raises(FisherError, match="Fisher file not found"):
        load_fisher(tmp_path / "missing.safetensors")
    save_file({"x": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(FisherError, match="no fishertools manifest"):
        load_fisher(tmp_path / "plain.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(FisherError, match="not a readable safetensors file"):
        load_fisher(tmp_path / "junk.safetensors")


def test_config_validation():
    with pytest.raises(FisherError, match="chunk_size"):
        FisherConfig(chunk_size=0)
    with pytest.raises(FisherError, match="field 'method': must be one of"):
        FisherConfig(method="magic")
    with pytest.raises(FisherError, match="bad regex"):
        FisherConfig(include=["re:("])


def _two_param_sum_fisher(a: float, b: float, sequences: list[list[int]]) -> tuple[float, float]:
    """Appendix E.1 by hand for ``TwoParam``: each sequence's loss is the SUM of the NLLs of all
    its tokens after the first; its gradient is squared, and the squares averaged over samples."""
    fa = fb = 0.0
    for seq in sequences:
        ga = gb = 0.0
        for x, y in itertools.pairwise(seq):
            p1 = 1 / (1 + math.exp(a * x - b))  # softmax(a·x, b)[1]
            ga += ((1 - p1) - (y == 0)) * x
            gb += p1 - (y == 1)
        fa += ga**2 / len(sequences)
        fb += gb**2 / len(sequences)
    return fa, fb


def test_sum_reduction_is_the_default_and_pinned_by_hand():
    """Two samples with 3 and 1 response tokens: the mean-reduced Fisher is another number."""
    a, b = 0.5, -0.25
    model = TwoParam(a, b)
    sequences = [[1, 0, 1, 1], [3, 1]]
    samples = [
        EncodedSample(torch.tensor(seq), torch.tensor([0.0] + [1.0] * (len(seq) - 1)), i)
        for i, seq in enumerate(sequences)
    ]
    fa, fb = _two_param_sum_fisher(a, b, sequences)
    assert FisherConfig().reduction == "sum"
    for fisher in (
        fisher_loop(model, samples, ["a", "b"]),
        fisher_vmap(model, samples, ["a", "b"], chunk_size=2),
    ):
        assert fisher["a"].item() == pytest.approx(fa, rel=1e-6)
        assert fisher["b"].item() == pytest.approx(fb, rel=1e-6)
    mean = fisher_loop(model, samples, ["a", "b"], reduction="mean")
    assert mean["a"].item() != pytest.approx(fa, rel=1e-2)


def test_compute_fisher_default_is_sum_of_token_nll(tiny_eager_lm, data_file: Path):
    """The default config on the tiny model equals an independent per-sample autograd of the
    summed response NLL (F.cross_entropy, reduction='sum'), not of its mean."""
    model, tokenizer = tiny_eager_lm
    samples = encode_records(read_records(data_file, 3), tokenizer, max_length=512)
    assert len({int(s.loss_mask.sum()) for s in samples}) > 1  # different response lengths
    name = "model.layers.1.mlp.down_proj.weight"
    param = dict(model.named_parameters())[name]
    expected = {"sum": torch.zeros_like(param), "mean": torch.zeros_like(param)}
    for sample in samples:
        logits = model(input_ids=sample.input_ids[None]).logits[0, :-1]
        targets = sample.input_ids[1:].masked_fill(sample.loss_mask[1:] == 0, -100)
        for reduction, acc in expected.items():
            loss = torch.nn.functional.cross_entropy(logits, targets, reduction=reduction)
            (g,) = torch.autograd.grad(loss, param, retain_graph=True)
            acc += g.square() / len(samples)
    got = compute_fisher(model, data_file, FisherConfig(samples=3), tokenizer=tokenizer)
    assert got.manifest["config"]["reduction"] == "sum"
    tol = 1e-5 * expected["sum"].abs().max().item()
    torch.testing.assert_close(got.fisher[name], expected["sum"], rtol=1e-4, atol=tol)
    assert not torch.allclose(got.fisher[name], expected["mean"], rtol=1e-2)


def test_memory_plan_bytes_per_parameter():
    """Appendix E.1's budget: bf16 weights + bf16 gradients + fp32 accumulator = 8 bytes per
    parameter (Qwen3-8B fits one 141 GB GPU), fp32 = 12; vmap holds 2 gradient copies a sample."""
    qwen3_8b = 8_190_735_360
    bf16 = memory_plan(qwen3_8b, "bf16")
    assert (bf16.weights, bf16.gradients, bf16.accumulator) == (
        2 * qwen3_8b,
        2 * qwen3_8b,
        4 * qwen3_8b,
    )
    assert bf16.total == 8 * qwen3_8b and 65e9 < bf16.total < 66e9
    assert memory_plan(qwen3_8b, "float32").total == 12 * qwen3_8b < 141e9
    vmap = memory_plan(1000, "bfloat16", method="vmap", chunk_size=4, selected=100)
    assert (vmap.weights, vmap.gradients, vmap.accumulator) == (2000, 2 * 4 * 100 * 2, 400)
    assert bf16.describe().startswith(
        "65.5 GB = weights 16.4 + gradients 16.4 + fp32 accumulator 32.8"
    )
    with pytest.raises(FisherError, match="unknown dtype"):
        memory_plan(10, "int8")


def test_manifest_records_the_memory_plan(tiny_eager_lm, data_file: Path):
    model, tokenizer = tiny_eager_lm
    config = FisherConfig(samples=1, include=["*.mlp.*"])
    result = compute_fisher(model, data_file, config, tokenizer=tokenizer)
    params = dict(model.named_parameters())
    selected = sum(params[n].numel() for n in result.fisher)
    plan = memory_plan(sum(p.numel() for p in params.values()), "float32", selected=selected)
    memory = result.manifest["memory"]
    assert memory["planned_bytes"]["total"] == plan.total
    assert memory["planned_bytes"]["accumulator"] == 4 * selected
    assert memory["peak_bytes"] is None  # CPU: no allocator peak to read


def test_an_unset_device_is_the_one_rollouts_and_evaluation_pick(monkeypatch, tiny_model_dir):
    """No CPU-only Fisher stage in a GPU run: device None reaches mixsd-core's loader, which
    takes cuda when there is one (else cpu)."""
    import mixsd_core
    from fishertools import CompareConfig, FisherConfig
    from fishertools._models import load_model

    assert FisherConfig().device is None and CompareConfig().device is None
    seen = []
    real = mixsd_core.load_model

    def recording(spec, **kwargs):
        seen.append(kwargs["device"])
        return real(spec, **kwargs)

    monkeypatch.setattr(mixsd_core, "load_model", recording)
    model = load_model(tiny_model_dir)
    assert seen == [None]
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(model.parameters()).device.type == expected
