"""The held-out decoding protocols (FACTS §5): the model family picks the paper's decoding, AIME
scores the mean over its 16 samples, the eval JSON says what ran, greedy sends what it always
sent, and sampled runs repeat with their seed.

Most tests run lm-eval on a fake model (no network) that answers from the exact user turn and
counts the samples it is asked for; the family comes from real ``transformers`` configs.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import forgetbench
from forgetbench._prompts import math_prompt, mmlu_prompt, mmlu_split

USER, ASSISTANT = "<|user|>\n", "\n<|assistant|>\n"
UNTIL = ["<|im_end|>", "<|eot_id|>", "<|endoftext|>", "</s>"]
SAMPLED = {"do_sample": True, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0}


def model_of(model_type: str) -> Any:
    """A stand-in for a loaded model: what the protocol reads is its ``config``."""
    import transformers

    configs = {
        "qwen3": transformers.Qwen3Config,
        "qwen2": transformers.Qwen2Config,
        "llama": transformers.LlamaConfig,
        "gpt2": transformers.GPT2Config,
    }
    return SimpleNamespace(config=configs[model_type]())


def counting_lm(right: dict[str, str], every: int = 4) -> Any:
    """An lm-eval LM whose k-th reply to a prompt is right when ``k % every == 0`` (so the first
    always is); it keeps the generation kwargs of every request in ``.seen``."""
    from lm_eval.api.model import LM

    class CountingLM(LM):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[str, dict[str, Any]]] = []
            self.calls: Counter[str] = Counter()

        @property
        def tokenizer_name(self) -> str:
            return "counting-lm"

        def apply_chat_template(self, chat_history: Any, add_generation_prompt: bool = True) -> str:
            (turn,) = chat_history
            return USER + turn["content"] + ASSISTANT

        def generate_until(self, requests: list[Any]) -> list[str]:
            out = []
            for request in requests:
                context, kwargs = request.args
                turn = context[len(USER) : -len(ASSISTANT)]
                self.seen.append((turn, dict(kwargs)))
                k = self.calls[turn]
                self.calls[turn] += 1
                out.append(right[turn] if k % every == 0 else "no idea, \\boxed{-98765}")
            return out

        def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
            raise NotImplementedError

        def loglikelihood_rolling(self, requests: list[Any]) -> list[float]:
            raise NotImplementedError

    return CountingLM()


def right_answers(data_dir: Path) -> dict[str, str]:
    """The right reply to every AIME fixture row and to the first MMLU rows."""
    right = {
        math_prompt(r["problem"]): f"So \\boxed{{{r['answer']}}}."
        for r in forgetbench.load_benchmark("aime24", folder=data_dir)
    }
    shots, scored = mmlu_split(forgetbench.load_benchmark("mmlu"))
    for row in scored[:2]:
        right[mmlu_prompt(row, shots[row["subject"]])] = f"\\boxed{{{row['answer']}}}"
    return right


@pytest.fixture
def fake_lm(data_folder: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    import lm_eval.models.huggingface

    lm = counting_lm(right_answers(data_folder))
    # run_heldout wraps the loaded model as HFLM(pretrained=model, ...): hand it the fake instead.
    monkeypatch.setattr(lm_eval.models.huggingface, "HFLM", lambda **kwargs: lm)
    return lm


@pytest.mark.parametrize(
    ("model_type", "decoding"), [("qwen3", "sampled"), ("qwen2", "sampled"), ("llama", "greedy")]
)
def test_paper_protocol_follows_the_model_family(model_type: str, decoding: str) -> None:
    protocol = forgetbench.resolve_protocol("paper", model_of(model_type))
    assert (protocol.decoding, protocol.model_type) == (decoding, model_type)
    aime, aime_samples = protocol.overrides("fb_aime24", 16384)
    mmlu, mmlu_samples = protocol.overrides("fb_mmlu", 16384)
    assert aime["max_gen_toks"] == 16384 and mmlu["max_gen_toks"] == 1024  # FACTS §5 budgets
    if decoding == "sampled":
        assert aime == {**SAMPLED, "temperature": 1.0, "max_gen_toks": 16384}
        assert (aime_samples, mmlu_samples) == (16, None)  # MMLU: its YAML's one sample
    else:
        assert aime == {"do_sample": False, "repetition_penalty": 1.0, "max_gen_toks": 16384}
        assert aime_samples == mmlu_samples == 1


def test_protocols_other_than_paper_ignore_the_family() -> None:
    llama = model_of("llama")
    assert forgetbench.resolve_protocol("sampled", llama).decoding == "sampled"
    greedy = forgetbench.resolve_protocol("greedy", model_of("qwen3"))
    assert greedy.overrides("fb_aime24", 512) == ({"max_gen_toks": 512}, None)  # as before


def test_paper_protocol_samples_every_family_but_llama() -> None:
    """The authors' rule: Llama by model_type or by an architecture's name; all else sampled."""
    assert forgetbench.resolve_protocol("paper", model_of("gpt2")).decoding == "sampled"
    renamed = SimpleNamespace(config=SimpleNamespace(model_type="x", architectures=["LlamaForX"]))
    assert forgetbench.resolve_protocol("paper", renamed).decoding == "greedy"


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(forgetbench.EvalError) as info:
        forgetbench.resolve_protocol("papr", model_of("qwen3"))
    assert info.value.field == "protocol"


def test_aime_scores_the_mean_over_all_16_samples(fake_lm: Any, data_folder: Path) -> None:
    """One sample in four is right, the first among them: the score is 0.25, not 1.0."""
    scores, samples, _ = forgetbench.run_heldout(
        model_of("qwen3"), None, ["fb_aime24"], protocol="paper", data_dir=data_folder
    )
    entry = scores["fb_aime24"]
    assert entry["score"] == 0.25 and entry["n"] == 1
    (record,) = samples
    assert len(record["replies"]) == 16 and record["exact_match"] == 0.25
    # The taxonomy, as the authors' error analysis: each of the 12 wrong samples is one row.
    assert record["errors"] == ["collapse"] * 12 and entry["taxonomy"]["collapse"] == 12
    assert entry["decoding"] == {
        "output_type": "generate_until", **SAMPLED, "temperature": 1.0, "samples": 16,
        "max_new_tokens": 512,
    }  # fmt: skip
    assert len(fake_lm.seen) == 16
    assert all(kwargs == {"until": UNTIL, **SAMPLED, "temperature": 1.0, "max_gen_toks": 512}
               for _, kwargs in fake_lm.seen)  # fmt: skip


def test_llama_decodes_greedily_once(fake_lm: Any, data_folder: Path) -> None:
    scores, samples, _ = forgetbench.run_heldout(
        model_of("llama"), None, ["fb_aime24"], protocol="paper", data_dir=data_folder
    )
    assert scores["fb_aime24"]["score"] == 1.0 and len(samples[0]["replies"]) == 1
    assert [kwargs["do_sample"] for _, kwargs in fake_lm.seen] == [False]
    assert scores["fb_aime24"]["decoding"]["temperature"] == 0.0


def test_greedy_protocol_sends_the_requests_it_always_sent(fake_lm: Any, data_folder: Path) -> None:
    """Each task's YAML decoding plus ``max_gen_toks``, one request per item: what forgetbench
    passed to lm-eval (``gen_kwargs={"max_gen_toks": N}``) before protocols existed."""
    scores, samples, _ = forgetbench.run_heldout(
        model_of("qwen3"), None, ["fb_aime24", "fb_mmlu"], limit=2, max_new_tokens=32,
        data_dir=data_folder,
    )  # fmt: skip
    assert [s["task"] for s in samples] == ["fb_aime24", "fb_mmlu", "fb_mmlu"]
    assert [kwargs for _, kwargs in fake_lm.seen] == [
        {"until": UNTIL, "do_sample": False, "max_gen_toks": 32}
    ] * 3
    assert all(len(s["replies"]) == 1 for s in samples)
    assert scores["fb_aime24"]["decoding"]["samples"] == 1


def test_eval_json_records_the_protocol(
    fake_lm: Any, data_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "forgetbench._runner._loader", lambda config: lambda spec: (model_of("qwen3"), None)
    )
    out = tmp_path / "qwen.json"
    config = forgetbench.EvalConfig(
        model="qwen3-stand-in", out=str(out), suites=["heldout"], tasks=["fb_aime24", "fb_mmlu"],
        protocol="paper", samples={"fb_aime24": 4}, max_new_tokens=2048, limit=2,
        data_dir=str(data_folder), seed=7,
    )  # fmt: skip
    forgetbench.evaluate(config)
    data = json.loads(out.read_text())
    assert data["heldout_protocol"] == {
        "protocol": "paper", "decoding": "sampled", "model_type": "qwen3", "temperature": 1.0,
        "seed": 7,
    }  # fmt: skip
    aime, mmlu = data["heldout"]["fb_aime24"]["decoding"], data["heldout"]["fb_mmlu"]["decoding"]
    assert (aime["do_sample"], aime["temperature"], aime["samples"]) == (True, 1.0, 4)
    assert (aime["max_new_tokens"], mmlu["max_new_tokens"], mmlu["samples"]) == (2048, 1024, 1)
    assert data["heldout"]["fb_aime24"]["score"] == 0.25


def test_sampled_runs_repeat_with_their_seed(tiny_lm: Any, data_folder: Path) -> None:
    """On the tiny model: the samples differ from each other, and the same seed draws them
    again."""
    model, tokenizer = tiny_lm
    protocol = forgetbench.resolve_protocol("sampled", model, samples={"fb_aime24": 3})

    def replies(seed: int) -> list[str]:
        _, samples, _ = forgetbench.run_heldout(
            model, tokenizer, ["fb_aime24"], max_new_tokens=4, protocol=protocol,
            data_dir=data_folder, seed=seed, batch_size=3,
        )  # fmt: skip
        (record,) = samples
        return record["replies"]

    first = replies(0)
    assert len(first) == 3 and len(set(first)) > 1
    assert replies(0) == first
    assert replies(1) != first
