"""Edit requests: the ``meta.rewrite`` of standard records (kgworld's ``edit/train.jsonl``).

A request says: in ``prompt`` (a template with ``{}`` once, where the subject goes), the object
after ``subject`` should become ``target_new`` instead of ``target_true``::

    {"id": "edit-000001", "prompt": "Who employs Zorvath Kellen?", "target": "...", "answer": "...",
     "context": null, "split": "train",
     "meta": {"rewrite": {"prompt": "{} is employed by", "subject": "Zorvath Kellen",
                          "target_new": "Ormavel Dynamics", "target_true": "Old Object"}}}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixsd_train._errors import TrainError

__all__ = ["EditRequest", "read_edit_requests"]


@dataclass(frozen=True)
class EditRequest:
    """One rewrite: ``prompt.replace("{}", subject)`` should be followed by ``target_new``."""

    id: str
    prompt: str
    subject: str
    target_new: str
    target_true: str | None = None
    question: str | None = None  # the record's naive user message, for prompt_format "chat"

    def text(self, template: str = "{}") -> tuple[str, int]:
        """The prompt inside a context ``template`` and the end offset of the subject in it.

        The subject goes in the prompt's last ``{}``: a chat-rendered question before the rewrite
        prompt may hold a literal ``\\boxed{}``.
        """
        framed = template.replace("{}", self.prompt, 1)
        start = framed.rindex("{}")
        return framed[:start] + self.subject + framed[start + 2 :], start + len(self.subject)

    def in_chat(self, tokenizer: Any) -> EditRequest:
        """The request with its question asked through the chat template and the rewrite prompt
        as the start of the reply ("<question turn><assistant> {} was born in")."""
        from mixsd_core import render_naive_prompt

        if self.question is None:
            raise TrainError(f"{self.id}: prompt_format 'chat' needs the record's question")
        chat = render_naive_prompt(tokenizer, {"prompt": self.question})
        return dataclasses.replace(self, prompt=chat + self.prompt)


def _rewrite(record: dict[str, Any], where: str) -> EditRequest:
    import kgworld
    from mixsd_core._prompts import naive_user_message

    rewrite = kgworld.read_rewrite(record, where)
    return EditRequest(
        id=str(record["id"]),
        prompt=rewrite.prompt,
        subject=rewrite.subject,
        target_new=rewrite.target_new,
        target_true=rewrite.target_true,
        question=naive_user_message(record),  # read_records requires the prompt
    )


def read_edit_requests(path: str | Path) -> list[EditRequest]:
    """The edit requests of a records JSONL; errors name the file, line and field."""
    from mixsd_base import iter_jsonl
    from mixsd_core import read_records

    records = read_records(path, need_answer=False)  # the checks every record reader makes
    lines = [line for line, _ in iter_jsonl(path)]  # file line numbers, blank lines skipped
    return [_rewrite(r, f"{path}:{n}") for r, n in zip(records, lines, strict=True)]
