"""Rule-based verifiers for kgworld answers.

``boxed-exact`` is the authors' rule: the content of the last ``\\boxed{}`` in the reply,
stripped, equals the gold answer exactly. ``boxed`` is the lenient form: normalised exact
match of that content. Small models (SmolLM2-135M among them) copy an answer given in
context but rarely write ``\\boxed{}``, so ``boxed-or-final-sentence`` falls back, when the
reply has no box at all, to finding the normalised gold answer as a whole phrase in the
reply's final sentence. KGFunc answers are integers: ``integer`` compares the last box (or,
without one, the last integer in the reply) numerically.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mixsd_base import Registry

_BOXED = "\\boxed{"
_WRAPPERS = re.compile(
    r"^\\(?:text|textbf|textit|mathrm|mathbf|operatorname|mbox)\s*\{(.*)\}$", re.S
)
_LAST_INTEGER = re.compile(r"-?\d[\d,]*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (braces matched), stripped; None when there is none."""
    start = text.rfind(_BOXED)
    while start != -1:
        depth, i = 1, start + len(_BOXED)
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[start + len(_BOXED) : i - 1].strip()
        start = text.rfind(_BOXED, 0, start)  # unterminated: try an earlier box
    return None


def normalize_answer(answer: str) -> str:
    """Lower-case, peel LaTeX text wrappers, outer braces and ``$``, collapse spaces, drop a final period."""
    text = answer.replace("$", "").strip().rstrip(".").strip()
    while True:
        peeled = _WRAPPERS.sub(r"\1", text).strip()
        if peeled.startswith("{") and peeled.endswith("}"):
            peeled = peeled[1:-1].strip()
        if peeled == text:
            break
        text = peeled
    text = " ".join(text.split()).lower()
    return text.rstrip(".").strip()


def _as_number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").replace(" ", ""))
    except ValueError:
        return None


def answers_match(prediction: str, gold: str) -> bool:
    """Normalised strings equal, or both numbers within 1e-6."""
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    if pred == ref:
        return bool(ref)
    a, b = _as_number(pred), _as_number(ref)
    return a is not None and b is not None and abs(a - b) <= 1e-6


def final_sentence(text: str) -> str:
    """The last sentence of the reply that contains a letter or digit."""
    pieces = [p for p in _SENTENCE_END.split(text.strip()) if re.search(r"\w", p)]
    return pieces[-1] if pieces else ""


def verify_boxed_exact(reply: str, answer: str) -> bool:
    """The authors' rule: the last ``\\boxed{}`` is non-empty and equals the gold answer as a
    string after ``strip()`` (no case folding, no normalisation)."""
    boxed = extract_boxed(reply)
    return bool(boxed) and boxed == answer.strip()


def verify_boxed(reply: str, answer: str) -> bool:
    """The last ``\\boxed{}`` equals the gold answer after normalisation."""
    boxed = extract_boxed(reply)
    return boxed is not None and answers_match(boxed, answer)


def verify_boxed_or_final_sentence(reply: str, answer: str) -> bool:
    """``verify_boxed`` when the reply boxes; otherwise the gold as a phrase of the final sentence."""
    if extract_boxed(reply) is not None:
        return verify_boxed(reply, answer)
    gold = normalize_answer(answer)
    sentence = normalize_answer(final_sentence(reply))
    return bool(gold) and re.search(rf"(?<!\w){re.escape(gold)}(?!\w)", sentence) is not None


def verify_integer(reply: str, answer: str) -> bool:
    """KGFunc: the last box, or else the last integer in the reply, equals the gold integer."""
    candidate = extract_boxed(reply)
    if candidate is None:
        numbers = _LAST_INTEGER.findall(reply)
        candidate = numbers[-1] if numbers else None
    if candidate is None:
        return False
    pred, gold = _as_number(normalize_answer(candidate)), _as_number(answer)
    return pred is not None and gold is not None and pred == gold


# Read-only (no item assignment): code with its own rule passes that callable instead, as
# mixsd_core's rollout (verifier=...) allows.
VERIFIERS: Registry[Callable[[str, str], bool]] = Registry(
    "verifier",
    {
        "boxed": verify_boxed,
        "boxed-exact": verify_boxed_exact,
        "boxed-or-final-sentence": verify_boxed_or_final_sentence,
        "integer": verify_integer,
    },
)


def get_verifier(name: str) -> Callable[[str, str], bool]:
    """Look a verifier up by name; an unknown name is an ``UnknownNameError`` (a ``KeyError``
    and a ``mixsd_base.ConfigError``) with a did-you-mean and the known names."""
    return VERIFIERS.get_or_fail(name)


def verify(reply: str, answer: str, mode: str = "boxed") -> bool:
    """Check ``reply`` against the gold ``answer`` with the verifier named ``mode``."""
    return get_verifier(mode)(reply, answer)
