"""Config defaults from the paper, YAML loading, overrides and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixsd_train import (
    MixSDKLConfig,
    OPSDConfig,
    OPSDNLLConfig,
    SFTConfig,
    TrainError,
    load_config,
    parse_overrides,
)


def test_paper_defaults(tmp_path: Path) -> None:
    config = SFTConfig(output_dir=str(tmp_path))
    assert config.global_batch_size == 16
    assert config.per_device_train_batch_size * config.gradient_accumulation_steps == 16
    assert config.lr_scheduler_type.value == "constant_with_warmup"
    assert (config.warmup_steps, config.save_steps, config.max_grad_norm) == (20, 20, 1.0)
    assert (config.learning_rate, config.adam_beta2, config.weight_decay) == (1e-5, 0.95, 0.01)
    assert config.bf16 is False  # CPU: fp32
    opsd = OPSDConfig(output_dir=str(tmp_path))
    assert (opsd.num_generations, opsd.temperature, opsd.top_k) == (8, 1.0, 64)
    nll = OPSDNLLConfig(output_dir=str(tmp_path))
    assert (nll.num_generations, nll.temperature) == (1, 0.0)


def test_yaml_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 1e-5\ntop_k: 8\nlora_target_modules: [q_proj, v_proj]\n")
    config = load_config(
        MixSDKLConfig, path, {"output_dir": str(tmp_path), **parse_overrides(["top_k=16"])}
    )
    assert config.learning_rate == 1e-5 and isinstance(config.learning_rate, float)  # '1e-5'
    assert config.top_k == 16
    assert config.lora_target_modules == ["q_proj", "v_proj"]


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("learning_rat: 1.0e-4\n")
    with pytest.raises(
        TrainError, match=r"c\.yaml: unknown SFTConfig key 'learning_rat'.*learning_rate"
    ):
        load_config(SFTConfig, path)
    with pytest.raises(TrainError, match="unknown SFTConfig key 'top_k'"):
        load_config(SFTConfig, None, {"top_k": 3})  # a field of another method


@pytest.mark.parametrize(
    ("cls", "values", "message"),
    [
        (MixSDKLConfig, {"top_k": 0}, "top_k must be >= 1"),
        (OPSDConfig, {"num_generations": 0}, "num_generations"),
        (SFTConfig, {"global_batch_size": 10}, "not a multiple"),
        (SFTConfig, {"learning_rate": "fast"}, "learning_rate must be a float"),
        (SFTConfig, {"prompt_style": "odd"}, "prompt_style"),
    ],
)
def test_bad_values(tmp_path: Path, cls: type, values: dict, message: str) -> None:
    with pytest.raises(TrainError, match=message):
        load_config(cls, None, {"output_dir": str(tmp_path), **values})


def test_bad_yaml_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n")
    with pytest.raises(TrainError, match="must be a mapping"):
        load_config(SFTConfig, path)
    with pytest.raises(TrainError, match="not key=value"):
        parse_overrides(["learning_rate"])


def test_global_batch_counts_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun / accelerate launch set it
    config = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=2)
    assert config.gradient_accumulation_steps == 4  # 2 per device x 2 devices x 4 = 16
    manual = SFTConfig(
        output_dir=str(tmp_path), global_batch_size=None, gradient_accumulation_steps=3
    )
    assert manual.gradient_accumulation_steps == 3
