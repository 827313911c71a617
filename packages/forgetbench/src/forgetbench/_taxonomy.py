"""Error taxonomy of wrong held-out answers (FACTS §5, the paper's ``error_analysis.py``).

Every incorrect response falls in exactly one bucket, checked in this order:

* ``format``: no parseable answer (no last ``\\boxed{}``); for code: no fenced block and no box;
* ``leakage``: the response names a trained-world entity that the prompt does not (the entities
  are the subject and the boxed answer of every KGFact train record, kept only when at least
  4 characters long and multi-word; case-insensitive substring test);
* ``collapse``: after dropping simple ``\\boxed{...}`` spans and lines starting with "the answer
  is", at most 80 characters and 4 newlines remain (a short template-like answer); for code: a box
  but no code block;
* ``genuine``: everything else.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from forgetbench._errors import EvalError
from forgetbench._scoring import has_code_block, last_boxed
from mixsd_base import check_fields, option, read_jsonl

__all__ = ["BUCKETS", "TaxonomyConfig", "classify", "leakage_entities", "tally"]

BUCKETS = ("format", "leakage", "collapse", "genuine")

_SIMPLE_BOX = re.compile(r"\\boxed\{[^{}]*\}")


@dataclass
class TaxonomyConfig:
    """Thresholds of the error taxonomy (the paper's values by default)."""

    max_chars: int = option(80, "collapse: at most this many characters outside the answer", min=0)
    max_newlines: int = option(4, "collapse: at most this many newlines outside the answer", min=0)
    min_entity_chars: int = option(4, "leakage: ignore world entities shorter than this", min=0)

    def __post_init__(self) -> None:
        check_fields(self, error=EvalError)


def leakage_entities(train_file: str | Path, config: TaxonomyConfig | None = None) -> list[str]:
    """Multi-word entity names of a KGFact train file, lower-cased: subjects and boxed answers."""
    config = config or TaxonomyConfig()
    path = Path(train_file)
    if not path.is_file():
        raise EvalError("KGFact train file not found (needed for leakage)", path=path.absolute())
    names: set[str] = set()
    for record in read_jsonl(path, allow_empty=True, what="KGFact train file"):
        subject = (record.get("meta") or {}).get("subject")
        boxed = last_boxed(str(record.get("target") or "")) or record.get("answer")
        for name in (subject, boxed):
            if isinstance(name, str):
                name = name.strip().lower()
                if len(name) >= config.min_entity_chars and " " in name:
                    names.add(name)
    return sorted(names)


def _leaks(reply: str, prompt: str, entities: Iterable[str]) -> bool:
    reply, prompt = reply.lower(), prompt.lower()
    return any(e in reply and e not in prompt for e in entities)


def _collapsed(reply: str, config: TaxonomyConfig) -> bool:
    rest = _SIMPLE_BOX.sub("", reply)
    lines = [ln for ln in rest.splitlines() if not ln.strip().lower().startswith("the answer is")]
    rest = "\n".join(lines).strip()
    return len(rest) <= config.max_chars and rest.count("\n") <= config.max_newlines


def classify(
    reply: str,
    prompt: str,
    kind: str,
    entities: Iterable[str] = (),
    config: TaxonomyConfig | None = None,
) -> str:
    """The bucket of one wrong reply; ``kind`` is the benchmark kind (``code`` has its own rules)."""
    config = config or TaxonomyConfig()
    boxed = last_boxed(reply) is not None
    if kind == "code":
        code = has_code_block(reply)
        if not code and not boxed:
            return "format"
        if _leaks(reply, prompt, entities):
            return "leakage"
        return "collapse" if not code else "genuine"
    if not boxed:
        return "format"
    if _leaks(reply, prompt, entities):
        return "leakage"
    return "collapse" if _collapsed(reply, config) else "genuine"


def tally(buckets: Iterable[str]) -> dict[str, int]:
    """Counts per bucket, every bucket present (zeros included), in priority order."""
    counts = Counter(buckets)
    return {b: counts.get(b, 0) for b in BUCKETS}
