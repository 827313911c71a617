import json
from pathlib import Path

import pytest
import torch

from fishertools import (
    CompareConfig,
    FisherConfig,
    FisherError,
    FisherResult,
    alignment,
    compare_checkpoints,
    compute_fisher,
    displacement_sums,
    layer_key,
    module_key,
)
from fishertools._compare import _displacement
from fishertools._models import load_model

from .conftest import perturbed_checkpoint


def test_rho_is_one_for_constant_fisher(tiny_eager_lm):
    model, _ = tiny_eager_lm
    gen = torch.Generator().manual_seed(0)
    fisher = {n: torch.full(p.shape, 0.375) for n, p in model.named_parameters()}
    base = {n: p.detach() for n, p in model.named_parameters()}
    tuned = {n: p + torch.randn(p.shape, generator=gen) for n, p in base.items()}
    out = _displacement(fisher, base, tuned, mean_fisher=0.375)
    assert out["totals"]["rho"] == pytest.approx(1.0, rel=1e-9)
    for table in ("per_layer", "per_module", "per_tensor"):
        for stats in out[table].values():
            assert stats["rho"] == pytest.approx(1.0, rel=1e-9)
            assert stats["rho_within"] == pytest.approx(1.0, rel=1e-9)


def test_two_parameter_displacement_by_hand():
    fisher = {"a": torch.tensor([4.0]), "b": torch.tensor([1.0])}
    base = {"a": torch.tensor([1.0]), "b": torch.tensor([2.0])}
    tuned = {"a": torch.tensor([1.5]), "b": torch.tensor([0.0])}  # Δ = (0.5, -2)
    out = _displacement(fisher, base, tuned, mean_fisher=2.5)["totals"]
    raw = 0.5**2 + 2**2  # 4.25
    fw = 4 * 0.5**2 + 1 * 2**2  # 5.0
    assert out["raw_sq"] == pytest.approx(raw)
    assert out["fisher_weighted"] == pytest.approx(fw)
    assert out["rho"] == pytest.approx((fw / raw) / 2.5)  # ≈ 0.4706: the update avoids high-F "a"
    assert out["quadratic_prediction"] == pytest.approx(fw / 2)
    assert displacement_sums(fisher["a"], torch.tensor([0.5])) == (0.25, 1.0, 4.0, 1)
    assert alignment(0.0, 0.0, 2.5) is None


def test_group_keys():
    assert layer_key("model.layers.3.mlp.up_proj.weight") == "model.layers.3"
    assert module_key("model.layers.3.mlp.up_proj.weight") == "mlp.up_proj"
    assert (
        layer_key("model.embed_tokens.weight")
        == module_key("model.embed_tokens.weight")
        == "model.embed_tokens"
    )
    assert layer_key("lm_head.weight") == "lm_head"


@pytest.fixture(scope="module")
def tiny_fisher(tiny_eager_lm, data_file: Path) -> FisherResult:
    model, tokenizer = tiny_eager_lm
    return compute_fisher(model, data_file, FisherConfig(samples=4), tokenizer=tokenizer)


def test_full_checkpoint_delta(
    tiny_model_dir: Path, tiny_eager_lm, tiny_fisher: FisherResult, tmp_path: Path
):
    model, _ = tiny_eager_lm
    ckpt = perturbed_checkpoint(
        tiny_model_dir, tmp_path / "ckpt", scale=0.01, seed=1, pattern="mlp"
    )
    tuned = dict(load_model(ckpt).named_parameters())
    report = compare_checkpoints(tiny_fisher, model, [ckpt])
    row = report["checkpoints"][0]
    assert row["kind"] == "full"
    for name, stats in row["per_tensor"].items():
        delta = tuned[name].detach() - dict(model.named_parameters())[name].detach()
        assert stats["raw_sq"] == pytest.approx(delta.double().square().sum().item(), rel=1e-6)
        if "mlp" not in name:
            assert stats["raw_sq"] == 0 and stats["rho"] is None


def test_lora_checkpoint_is_merged(
    tiny_model_dir: Path, tiny_eager_lm, tiny_fisher: FisherResult, tmp_path: Path
):
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), config)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:  # B starts at zero: make the update non-zero
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    adapter = tmp_path / "lora-ckpt"
    peft_model.save_pretrained(adapter)

    model, _ = tiny_eager_lm
    report = compare_checkpoints(tiny_fisher, model, [adapter])
    row = report["checkpoints"][0]
    assert row["kind"] == "lora"
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    scaling = config.lora_alpha / config.r
    touched = 0
    for name, stats in row["per_tensor"].items():
        module = name.removesuffix(".weight")
        a_key = f"base_model.model.{module}.lora_A.weight"
        if a_key in weights:  # Δθ must be exactly the merged low-rank update s·B·A
            delta = scaling * weights[a_key.replace("lora_A", "lora_B")] @ weights[a_key]
            assert stats["raw_sq"] == pytest.approx(delta.double().square().sum().item(), rel=1e-5)
            fw = (tiny_fisher.fisher[name].double() * delta.double().square()).sum().item()
            assert stats["fisher_weighted"] == pytest.approx(fw, rel=1e-5)
            touched += 1
        else:
            assert stats["raw_sq"] == 0
    assert touched == 4  # q_proj and v_proj of 2 layers
    # the base model itself is untouched by the merge
    assert "lora" not in " ".join(n for n, _ in model.named_parameters())


def test_shape_mismatch_is_a_clean_error(tiny_fisher: FisherResult, tmp_path: Path):
    from mixsd_core.testing import build_tiny_model

    other = build_tiny_model(tmp_path / "wide", hidden_size=64)
    with pytest.raises(
        FisherError,
        match=r"shape mismatch for model\.embed_tokens\.weight: Fisher \(384, 128\) vs model \(384, 64\)",
    ):
        compare_checkpoints(tiny_fisher, other, [other])


def test_loss_measurement_and_second_order(
    tiny_model_dir: Path, tiny_eager_lm, tiny_fisher: FisherResult, data_file: Path, tmp_path: Path
):
    model, _ = tiny_eager_lm
    small = perturbed_checkpoint(
        tiny_model_dir, tmp_path / "run" / "checkpoint-1", scale=1e-3, seed=5
    )
    config = CompareConfig(loss_data=data_file, loss_samples=4, batch_size=3)
    report = compare_checkpoints(
        tiny_fisher, model, [tmp_path / "run"], config, out=tmp_path / "r.json"
    )
    row = report["checkpoints"][0]
    assert row["path"] == str(small.absolute())  # a run folder expands to its checkpoints
    so = row["second_order"]
    assert so["delta_nll"] == row["forgetting"]["delta_nll"]  # ΔNLL (sample mean)
    assert so["quadratic_prediction"] == row["totals"]["fisher_weighted"] / 2
    assert report["base_nll"] > 0
    assert (
        json.loads((tmp_path / "r.json").read_text())["checkpoints"][0]["name"]
        == "run/checkpoint-1"
    )
    assert (tmp_path / "r.png").stat().st_size > 10_000  # no forgetting given: per-layer figure


def test_checkpoint_loads_in_the_base_dtype(tiny_model_dir: Path, tmp_path: Path):
    """A bf16 base (a GPU run) gets its checkpoints in bf16 too, not an fp32 copy beside it
    (an 8B model: 32.8 GB more); Δθ is still taken in fp32."""
    from fishertools._models import load_checkpoint

    ckpt = perturbed_checkpoint(tiny_model_dir, tmp_path / "ckpt", 0.01, seed=1)
    base = load_model(tiny_model_dir, dtype="bfloat16")
    model, kind = load_checkpoint(ckpt, base)
    assert kind == "full" and next(model.parameters()).dtype == torch.bfloat16
