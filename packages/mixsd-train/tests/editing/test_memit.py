"""MEMIT on a tiny model: the edit lands, only listed layers move, C is sound, C is cached."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from mixsd_core import load_model
from mixsd_train.editing import (
    EditRequest,
    MEMITConfig,
    compute_target,
    context_templates,
    corpus_chunks,
    read_edit_requests,
    rewrite_accuracy,
    run_memit,
    second_moments,
)
from mixsd_train.editing._hooks import (
    add_at_positions,
    down_proj_input,
    layer_output,
    replay_from,
)

# Small enough for a few seconds on one core, large enough for a full-rank C (d_in = 256).
STATS = {"corpus": "pydoc-prose", "samples": 32, "seq_len": 64, "batch_size": 16}


def tiny_config(model_dir: Path, edits: Path, tmp_path: Path, **overrides: object) -> MEMITConfig:
    values: dict[str, object] = {
        "model": str(model_dir),
        "edits": str(edits),
        "output_dir": str(tmp_path / "runs" / "memit"),
        "stats_dir": str(tmp_path / "stats"),
        "mom2_samples": STATS["samples"],
        "mom2_seq_len": STATS["seq_len"],
        # lambda scales with the key dimension (E[k^T C^-1 k] = d_in): 15000 is sized for
        # d_in ~ 10^4; the tiny model's d_in = 256 needs a far smaller weight to write at all.
        "mom2_update_weight": 10.0,
        "context_template_tokens": 4,
        "device": "cpu",
    }
    values.update(overrides)
    return MEMITConfig(**values)  # type: ignore[arg-type]


def test_single_edit_flips_top1_and_touches_only_listed_layers(
    edit_model_dir: Path, write_edits: Callable[..., Path], tmp_path: Path
) -> None:
    config = tiny_config(edit_model_dir, write_edits(1), tmp_path, layers="1-2")
    manifest = run_memit(config, progress=False)
    assert manifest["rewrite_accuracy"]["before"]["top1"] == 0.0
    assert manifest["rewrite_accuracy"]["after"]["top1"] == 1.0
    assert manifest["layers"] == [1, 2] and set(manifest["update_norms"]) == {"1", "2"}

    out = Path(config.output_dir)
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["edits"]["count"] == 1 and on_disk["status"] == "complete"
    assert not list(out.parent.glob(".memit.partial-*"))  # the build folder was renamed away
    edited, tokenizer = load_model(str(out), device="cpu")
    base, _ = load_model(str(edit_model_dir), device="cpu")
    requests = read_edit_requests(config.edits)
    assert rewrite_accuracy(edited, tokenizer, requests)[0]["top1"]
    assert not rewrite_accuracy(base, tokenizer, requests)[0]["top1"]
    edited_params = dict(edited.named_parameters())
    changed = {
        name for name, p in base.named_parameters() if not torch.equal(p, edited_params[name])
    }
    assert changed == {f"model.layers.{i}.mlp.down_proj.weight" for i in (1, 2)}


def test_chat_format_edits_the_reply_to_the_question(
    edit_model_dir: Path, write_edits: Callable[..., Path], tmp_path: Path
) -> None:
    """prompt_format chat: the new object follows the question's chat turn + reply start."""
    config = tiny_config(
        edit_model_dir, write_edits(1), tmp_path, layers="1-2", prompt_format="chat"
    )
    manifest = run_memit(config, progress=False)
    assert manifest["rewrite_accuracy"]["before"]["top1"] == 0.0
    assert manifest["rewrite_accuracy"]["after"]["top1"] == 1.0
    edited, tokenizer = load_model(config.output_dir, device="cpu")
    requests = read_edit_requests(config.edits)
    chat = [r.in_chat(tokenizer) for r in requests]
    assert chat[0].prompt.startswith("<|im_start|>user\n")
    assert rewrite_accuracy(edited, tokenizer, chat)[0]["top1"]


def test_second_moment_is_symmetric_psd_and_matches_fp64(
    edit_model_dir: Path, tmp_path: Path
) -> None:
    model, tokenizer = load_model(str(edit_model_dir), device="cpu")
    moments, _ = second_moments(model, tokenizer, [0, 2], cache=tmp_path, progress=False, **STATS)
    for layer, c in moments.items():
        assert c.dtype == torch.float64 and c.shape == (256, 256)
        torch.testing.assert_close(c, c.T, rtol=1e-6, atol=1e-9)
        eigenvalues = torch.linalg.eigvalsh((c + c.T) / 2)
        assert eigenvalues.min() >= -1e-8 * eigenvalues.max()
        # the fp32-per-batch / fp64-sum estimate equals a direct fp64 one
        chunks = corpus_chunks(tokenizer, "pydoc-prose", STATS["samples"], STATS["seq_len"])
        k = down_proj_input(model, layer, chunks, torch.ones_like(chunks)).double()
        k = k.reshape(-1, k.shape[-1])
        torch.testing.assert_close(c, k.T @ k / len(k), rtol=1e-4, atol=1e-7)


def test_second_moment_cache_is_reused(
    edit_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tokenizer = load_model(str(edit_model_dir), device="cpu")
    first, files = second_moments(model, tokenizer, [1], cache=tmp_path, progress=False, **STATS)
    assert Path(files[1]).is_file() and Path(files[1]).parent == tmp_path

    def no_forward(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model ran although C was cached")

    monkeypatch.setattr(model.model, "forward", no_forward)
    again, files_again = second_moments(
        model, tokenizer, [1], cache=tmp_path, progress=False, **STATS
    )
    assert files_again == files and torch.equal(first[1], again[1])
    with pytest.raises(AssertionError, match="the model ran"):  # another count: a new file
        second_moments(
            model, tokenizer, [1], cache=tmp_path, progress=False, **{**STATS, "samples": 16}
        )
    monkeypatch.undo()
    with torch.no_grad():  # other weights: another fingerprint, so no stale reuse
        model.model.layers[0].mlp.up_proj.weight.mul_(1.01)
    _, files_changed = second_moments(
        model, tokenizer, [1], cache=tmp_path, progress=False, **STATS
    )
    assert files_changed[1] != files[1]


def test_context_templates_are_seeded(edit_model_dir: Path) -> None:
    model, tokenizer = load_model(str(edit_model_dir), device="cpu")
    first = context_templates(model, tokenizer, 3, 4, seed=1)
    assert first == context_templates(model, tokenizer, 3, 4, seed=1)
    assert first[0] == "{}" and len(first) == 4
    assert all(t.count("{}") == 1 and t.endswith(". {}") for t in first[1:])
    assert context_templates(model, tokenizer, 0, 4, seed=1) == ["{}"]


def test_replay_matches_the_full_forward(edit_model_dir: Path) -> None:
    """The target search replays the frozen layers: same logits as running them, delta included."""
    model, tokenizer = load_model(str(edit_model_dir), device="cpu")
    ids = tokenizer(
        ["Zorvath Kellen is employed by", "Mira Solend"], padding=True, return_tensors="pt"
    )
    rows, positions = torch.tensor([0, 1]), torch.tensor([3, 1])
    delta = torch.randn(128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        with add_at_positions(model, 1, rows, positions, delta):
            full = model.model(**ids).last_hidden_state
        frozen = model.model.layers[1]  # the hook below must land on the replayed layer
        cached = layer_output(model, 1, ids["input_ids"], ids["attention_mask"])
        with replay_from(model, 1, cached), add_at_positions(model, 1, rows, positions, delta):
            replayed = model.model(**ids).last_hidden_state
    assert model.model.layers[1] is frozen  # restored
    torch.testing.assert_close(replayed, full)


def test_target_search_lowers_the_nll(edit_model_dir: Path) -> None:
    model, tokenizer = load_model(str(edit_model_dir), device="cpu")
    model.requires_grad_(False)
    request = EditRequest("e", "{} is employed by", "Zorvath Kellen", "Ormavel Dynamics")
    config = MEMITConfig(v_num_grad_steps=1)
    _, first = compute_target(model, tokenizer, request, 1, ["{}"], config)
    config = MEMITConfig(v_num_grad_steps=15, clamp_norm_factor=0.5)
    z, last = compute_target(model, tokenizer, request, 1, ["{}", "A b. {}"], config)
    assert last["nll"] < first["nll"] and z.shape == (128,)
    assert last["delta_norm"] <= 0.5 * last["h_norm"] * (1 + 1e-5)  # the clamp holds
