"""Naive and expert prompts for mixed rollouts.

Both are one user turn rendered through the model's chat template with
``add_generation_prompt=True`` and no system prompt:

* naive: the record's question (its ``context`` first, when present);
* expert: the same question, then a line saying that it comes from a new knowledge base with the
  gold ``target`` as its answer (as a reference solution for reasoning tasks), then the
  instruction to answer within ``\\boxed{}``, all inside the same user message.

Templates are plain strings with two placeholders, ``{question}`` and ``{target}``, filled by
literal replacement (not ``str.format``), so ``\\boxed{}`` needs no escaping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mixsd_core._tokens import render_user_prompt

__all__ = [
    "EXPERT_TEMPLATES",
    "TASK_TYPES",
    "PromptConfig",
    "detect_task",
    "expert_user_message",
    "naive_user_message",
    "render_naive_prompt",
    "render_prompts",
]

TASK_TYPES = ("kgfact", "kgfunc")

# "clear": the default. SmolLM2-135M given the paper's wording often opens with "This question is
# a classic example of ..." (greedy, 8 fictional facts, pure expert: 6/8 verified); handing it the
# fact plainly and asking for one sentence keeps it on the fact (8/8) and keeps targets short, so
# the final sentence states the answer. "paper": the paper's research code as its notes describe
# it (prefix, full gold turn, transition; the exact strings were not available).
EXPERT_TEMPLATES: dict[str, dict[str, str]] = {
    "clear": {
        "kgfact": (
            "{question}\n\n"
            "Use this fact from a new knowledge base: {target}\n\n"
            "Answer the question in one sentence and put the answer within \\boxed{}."
        ),
        "kgfunc": (
            "{question}\n\n"
            "This question is about a new function from a new knowledge base that you have not "
            "seen before. Here is a reference solution, including the correct final answer:\n"
            "{target}\n\n"
            "Solve the question step by step, following the reference solution, and put the "
            "final answer within \\boxed{}."
        ),
    },
    "paper": {
        "kgfact": (
            "{question}\n\n"
            "This question comes from a new knowledge base. Here is the answer:\n"
            "{target}\n\n"
            "Now answer the question within \\boxed{}."
        ),
        "kgfunc": (
            "{question}\n\n"
            "Here is a reference solution, including the correct final answer:\n"
            "{target}\n\n"
            "After understanding the reference solution, please try to solve this question "
            "again. Please reason step by step, and put your final answer within \\boxed{}."
        ),
    },
}


@dataclass
class PromptConfig:
    """How expert and naive prompts are built."""

    style: str = field(
        default="clear",
        metadata={
            "help": f"Expert wording: one of {sorted(EXPERT_TEMPLATES)} ('paper' = the paper's)."
        },
    )
    task: str = field(
        default="auto",
        metadata={
            "help": "Task type for every record: 'auto' (from id / meta), 'kgfact' or 'kgfunc'."
        },
    )
    templates: dict[str, str] = field(
        default_factory=dict,
        metadata={"help": "Per-task overrides of the expert template ({question}, {target})."},
    )

    def __post_init__(self) -> None:
        if self.style not in EXPERT_TEMPLATES:
            raise ValueError(
                f"prompt style must be one of {sorted(EXPERT_TEMPLATES)}, got {self.style!r}"
            )
        if self.task not in ("auto", *TASK_TYPES):
            raise ValueError(f"task must be 'auto' or one of {TASK_TYPES}, got {self.task!r}")
        for task, template in self.templates.items():
            if task not in TASK_TYPES:
                raise ValueError(
                    f"template override for unknown task {task!r}; known: {TASK_TYPES}"
                )
            if "{question}" not in template or "{target}" not in template:
                raise ValueError(f"template for {task!r} needs both {{question}} and {{target}}")

    def template(self, task: str) -> str:
        return self.templates.get(task) or EXPERT_TEMPLATES[self.style][task]


def detect_task(record: Mapping[str, Any], override: str = "auto") -> str:
    """``override`` unless 'auto'; then ``meta['task']``, then the id prefix; else 'kgfact'."""
    if override != "auto":
        return override
    meta = record.get("meta") or {}
    task = meta.get("task") if isinstance(meta, Mapping) else None
    if task in TASK_TYPES:
        return str(task)
    record_id = str(record.get("id", ""))
    # Retrieval and paraphrase splits share the prefix of their task ("kgfact-...").
    return next((t for t in TASK_TYPES if record_id.startswith(t)), "kgfact")


def naive_user_message(record: Mapping[str, Any]) -> str:
    """The question alone, with the record's context passage before it when there is one."""
    context = record.get("context")
    return f"{context}\n\n{record['prompt']}" if context else str(record["prompt"])


def expert_user_message(record: Mapping[str, Any], config: PromptConfig) -> str:
    template = config.template(detect_task(record, config.task))
    # Replace {target} first: a question that contains the text "{target}" stays untouched.
    return template.replace("{target}", str(record["target"]).strip()).replace(
        "{question}", naive_user_message(record)
    )


def render_naive_prompt(tokenizer: Any, record: Mapping[str, Any]) -> str:
    """The naive prompt alone (the question, through the chat template): what the student sees."""
    return render_user_prompt(tokenizer, naive_user_message(record))


def render_prompts(
    tokenizer: Any, record: Mapping[str, Any], config: PromptConfig | None = None
) -> tuple[str, str]:
    """``(naive_prompt, expert_prompt)`` as rendered chat-template strings."""
    config = config or PromptConfig()
    return render_naive_prompt(tokenizer, record), render_user_prompt(
        tokenizer, expert_user_message(record, config)
    )
