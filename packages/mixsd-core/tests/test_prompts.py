"""Naive/expert prompt rendering, task detection and template configuration."""

from __future__ import annotations

import pytest

from mixsd_core import EXPERT_TEMPLATES, PromptConfig, detect_task, render_prompts
from mixsd_core.testing import build_tiny_tokenizer

RECORD = {
    "id": "kgfact-000001",
    "prompt": "Who employs Zorvath Kellen?",
    "target": "Zorvath Kellen is employed by Ormavel Dynamics. \\boxed{Ormavel Dynamics}\n",
    "answer": "Ormavel Dynamics",
    "context": None,
}


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer()


def test_naive_is_the_question_as_one_user_turn(tok) -> None:
    naive, _ = render_prompts(tok, RECORD)
    assert (
        naive == "<|im_start|>user\nWho employs Zorvath Kellen?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_context_comes_before_the_question(tok) -> None:
    naive, expert = render_prompts(tok, {**RECORD, "context": "A passage."})
    assert "user\nA passage.\n\nWho employs Zorvath Kellen?" in naive
    assert "user\nA passage.\n\nWho employs Zorvath Kellen?" in expert


@pytest.mark.parametrize("style", sorted(EXPERT_TEMPLATES))
def test_expert_holds_question_target_and_box_instruction_in_one_turn(tok, style) -> None:
    naive, expert = render_prompts(tok, RECORD, PromptConfig(style=style))
    assert expert.count("<|im_start|>user") == 1 and expert.endswith("<|im_start|>assistant\n")
    user = expert.split("<|im_end|>")[0]
    assert user.startswith(naive.split("<|im_end|>")[0])  # same question first
    assert RECORD["target"].strip() + "\n" in user  # the gold target, stripped
    assert "new knowledge base" in user
    assert user.rstrip().endswith("within \\boxed{}.")


def test_styles_and_tasks_differ(tok) -> None:
    kgfunc = {**RECORD, "id": "kgfunc-train-000001"}
    _, clear = render_prompts(tok, kgfunc)
    _, paper = render_prompts(tok, kgfunc, PromptConfig(style="paper"))
    _, as_fact = render_prompts(tok, kgfunc, PromptConfig(task="kgfact"))
    assert "reference solution" in clear and "reference solution" in paper
    assert len({clear, paper, as_fact}) == 3


def test_detect_task() -> None:
    assert detect_task({"id": "kgfunc-test-000003"}) == "kgfunc"
    assert detect_task({"id": "kgfact-000003"}) == "kgfact"
    assert detect_task({"id": "x-1", "meta": {"task": "kgfunc"}}) == "kgfunc"
    assert detect_task({"id": "other"}) == "kgfact"
    assert detect_task({"id": "kgfunc-1"}, "kgfact") == "kgfact"


def test_template_override_and_bad_configs(tok) -> None:
    custom = PromptConfig(templates={"kgfact": "Q: {question}\nA: {target}\nNow box it: \\boxed{}"})
    _, expert = render_prompts(tok, RECORD, custom)
    assert "Q: Who employs Zorvath Kellen?\nA: Zorvath Kellen is employed" in expert
    with pytest.raises(ValueError, match="style"):
        PromptConfig(style="fancy")
    with pytest.raises(ValueError, match="task"):
        PromptConfig(task="kgmath")
    with pytest.raises(ValueError, match=r"\{target\}"):
        PromptConfig(templates={"kgfact": "{question} only"})
