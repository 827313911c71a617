"""Answer extraction and scoring for the held-out benchmarks, as the authors' scorers do it
(FACTS §5 describes them).

* math (AIME, MATH-500, GSM8K): the last brace-matched ``\\boxed{}``, compared with math-verify
  (``verify(parse(\\boxed{pred}), parse(\\boxed{gold}))``, library defaults, so an unparsable
  answer is no match); if math-verify raises, exact match of the stripped strings. No box: wrong.
* MMLU: drop everything up to the first ``</think>``; the last ``\\boxed{A-D}`` (any case); else
  the reply's first line, punctuation dropped, lowercased, must equal the gold letter.
* HumanEval: the first fenced code block (python / py / python3 tag or none), stripped; else the
  text before the first fence, or the whole reply. The program is the original prompt plus that
  code.
"""

from __future__ import annotations

import re
import string

__all__ = [
    "extract_code",
    "has_code_block",
    "last_boxed",
    "mmlu_letter",
    "score_math",
    "score_mmlu",
]

# Fenced blocks in order, pairing fences left to right: (info string, body). The taxonomy's test.
_FENCE = re.compile(r"```([^\n`]*)\n(.*?)```", re.S)
# The scored code, as the authors' HumanEval scorer reads it: the first ``` pair; an optional
# python/py/python3 tag, whitespace and newline are dropped before the body. (So "```java" keeps
# "java" in the body and "```python3" keeps "3": their regex, quirks included.)
_FIRST_BLOCK = re.compile(r"```(?:python|py|python3)?\s*\n?(.*?)```", re.S)
_BOXED_LETTER = re.compile(r"\\boxed\{\s*([A-Da-d])\s*\}")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def last_boxed(text: str) -> str | None:
    """Content of the last brace-matched ``\\boxed{...}``; None when there is none."""
    # kgworld's rule (so in-domain and held-out agree); imported here because kgworld pulls in
    # networkx, which `import forgetbench` should not pay for.
    from kgworld import extract_boxed

    return extract_boxed(text)


def score_math(reply: str, gold: str, *, parse_timeout: int = 10, verify_timeout: int = 30) -> bool:
    """Last box vs gold with math-verify, called as the authors' script calls it: both wrapped in
    ``\\boxed{}``, prediction first, library defaults (a parse failure is no match); the exact
    string match only when math-verify raises."""
    predicted = last_boxed(reply)
    if predicted is None:
        return False
    try:
        from math_verify import parse, verify

        return bool(
            verify(
                parse(f"\\boxed{{{predicted}}}", parsing_timeout=parse_timeout),
                parse(f"\\boxed{{{gold}}}", parsing_timeout=parse_timeout),
                timeout_seconds=verify_timeout,
            )
        )
    except Exception:  # sympy errors, a signal outside the main thread
        return predicted.strip() == str(gold).strip()


def _after_think(reply: str) -> str:
    """The reply after the first ``</think>`` (all of it when there is none)."""
    return reply.split("</think>", 1)[-1]


def mmlu_letter(reply: str) -> str | None:
    """The answer letter of a reply: the last ``\\boxed{A-D}``, upper-cased; None when no box."""
    found = _BOXED_LETTER.findall(_after_think(reply))
    return found[-1].upper() if found else None


def score_mmlu(reply: str, gold: str) -> bool:
    letter = mmlu_letter(reply)
    if letter is not None:
        return letter == gold.upper()
    # No box: the reply's first line (as it starts: a leading newline makes it empty), stripped
    # of punctuation, must be the letter.
    first = _after_think(reply).split("\n", 1)[0]
    return first.translate(_PUNCTUATION).strip().lower() == gold.lower()


def has_code_block(reply: str) -> bool:
    return _FENCE.search(reply) is not None


def extract_code(reply: str) -> str:
    """The first fenced block (python / py / python3 tag or none), stripped; else the text
    before the first fence; else the whole reply."""
    found = _FIRST_BLOCK.search(reply)
    if found:
        return found.group(1).strip()
    return reply[: reply.index("```")] if "```" in reply else reply
