"""Answer extraction and scoring for the held-out benchmarks, exactly as FACTS §5 describes.

* math (AIME, MATH-500, GSM8K): the last brace-matched ``\\boxed{}``, compared with math-verify
  (``parse`` + ``verify``, gold wrapped as ``\\boxed{gold}``); if math-verify errors, exact match
  of the stripped strings. No box: wrong.
* MMLU: drop everything up to ``</think>``; the last ``\\boxed{A-D}`` (any case); else the reply's
  first line, punctuation dropped, lowercased, must equal the gold letter.
* HumanEval: the first fenced code block (python / py / python3 tag or none); else the text before
  the first fence, or the whole reply. The program is the original prompt plus that code.
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

# Fenced blocks in order, pairing fences left to right: (info string, body).
_FENCE = re.compile(r"```([^\n`]*)\n(.*?)```", re.S)
_CODE_TAGS = ("", "python", "py", "python3")
_BOXED_LETTER = re.compile(r"\\boxed\{\s*([A-Da-d])\s*\}")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def last_boxed(text: str) -> str | None:
    """Content of the last brace-matched ``\\boxed{...}``; None when there is none."""
    # kgworld's rule (so in-domain and held-out agree); imported here because kgworld pulls in
    # networkx, which `import forgetbench` should not pay for.
    from kgworld import extract_boxed

    return extract_boxed(text)


def score_math(reply: str, gold: str, *, parse_timeout: int = 10, verify_timeout: int = 30) -> bool:
    """Last box vs gold with math-verify; exact string match if math-verify errors."""
    predicted = last_boxed(reply)
    if predicted is None:
        return False
    try:
        from math_verify import parse, verify

        gold_parsed = parse(
            f"\\boxed{{{gold}}}", parsing_timeout=parse_timeout, raise_on_error=True
        )
        pred_parsed = parse(
            f"\\boxed{{{predicted}}}", parsing_timeout=parse_timeout, raise_on_error=True
        )
        return bool(
            verify(gold_parsed, pred_parsed, timeout_seconds=verify_timeout, raise_on_error=True)
        )
    except Exception:  # timeouts, sympy errors, a signal outside the main thread
        return predicted.strip() == str(gold).strip()


def mmlu_letter(reply: str) -> str | None:
    """The answer letter of a reply: the last ``\\boxed{A-D}``, upper-cased; None when no box."""
    reply = reply.split("</think>")[-1]
    found = _BOXED_LETTER.findall(reply)
    return found[-1].upper() if found else None


def score_mmlu(reply: str, gold: str) -> bool:
    letter = mmlu_letter(reply)
    if letter is not None:
        return letter == gold.upper()
    # No box: the first line alone, stripped of punctuation, must be the letter.
    lines = reply.split("</think>")[-1].strip().splitlines()
    first = lines[0].translate(_PUNCTUATION).strip().lower() if lines else ""
    return first == gold.lower()


def has_code_block(reply: str) -> bool:
    return _FENCE.search(reply) is not None


def extract_code(reply: str) -> str:
    """The first python (or untagged) fenced block; else the text before the first fence."""
    for match in _FENCE.finditer(reply):
        if match.group(1).strip().lower() in _CODE_TAGS:
            return match.group(2)
    if "```" in reply:
        before = reply[: reply.index("```")]
        if before.strip():
            return before
    return reply
