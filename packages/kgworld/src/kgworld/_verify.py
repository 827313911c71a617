"""Rule-based verifiers for kgworld answers.

``boxed-exact`` is the authors' rule: the content of the last ``\\boxed{}`` in the reply,
stripped, equals the gold answer exactly. ``boxed`` is the lenient form: normalised exact
match of that content. Small models (SmolLM2-135M among them) copy an answer given in
context but rarely write ``\\boxed{}``, so ``boxed-or-final-sentence`` falls back, when the
reply has no box at all, to finding the normalised gold answer as a whole phrase in the
reply's final sentence. KGFunc answers are integers: ``integer`` compares the last box (or,
without one, the last integer in the reply) numerically.

``extract-loose`` (KGFact) and ``extract-strict`` (KGFunc) are the authors' in-domain scorer
(FACTS.md §5, ``extract_answer_from_text`` / ``normalize_answer`` of their ``eval_output.py``):
the answer is the last box, else an ``<answer>`` tag, else the last number, else the whole
reply; normalised strings equal or numbers within 1e-6; loose also accepts the normalised gold
inside the normalised prediction.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mixsd_base import Registry

_BOXED = "\\boxed{"
_WRAPPER_NAMES = r"text|textbf|textit|mathrm|mathbf|operatorname|mbox"
_WRAPPERS = re.compile(rf"^\\(?:{_WRAPPER_NAMES})\s*\{{(.*)\}}$", re.S)
_WRAPPER_OPEN = re.compile(rf"\\(?:{_WRAPPER_NAMES})\s*\{{")
_LAST_INTEGER = re.compile(r"-?\d[\d,]*")
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.S)
_SIMPLE_FRAC = re.compile(r"(-?)\\frac\{([^{}]+)\}\{([^{}]+)\}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _brace_end(text: str, start: int) -> int | None:
    """Index just past the ``}`` closing the brace opened right before ``start``; None if none."""
    depth, i = 1, start
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return i if depth == 0 else None


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (braces matched), stripped; None when there is none."""
    start = text.rfind(_BOXED)
    while start != -1:
        end = _brace_end(text, start + len(_BOXED))
        if end is not None:
            return text[start + len(_BOXED) : end - 1].strip()
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


def extract_answer(text: str) -> str:
    """The authors' in-domain answer extraction, first that yields an answer: the last
    ``\\boxed{}``, an ``<answer>...</answer>`` tag (the first), the last number, the whole
    stripped reply. An empty box or tag yields nothing and the next step is tried."""
    boxed = extract_boxed(text)
    if boxed:
        return boxed
    tag = _ANSWER_TAG.search(text)
    if tag and tag.group(1).strip():
        return tag.group(1).strip()
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else text.strip()


def _peel_paper(answer: str) -> str:
    """``$`` removed, then ``\\text{}``-style wrappers and outer braces peeled while the brace
    that opens them is the one that closes the text (``{a}{b}`` stays whole)."""
    text = answer.replace("$", "").strip()
    while True:
        wrapper = _WRAPPER_OPEN.match(text)
        start = wrapper.end() if wrapper else 1 if text.startswith("{") else None
        if start is None or _brace_end(text, start) != len(text):
            return text
        text = text[start:-1].strip()


def _paper_number(text: str) -> float | None:
    """Float of the peeled text without spaces and commas, or of a simple ``\\frac{a}{b}``."""
    compact = text.replace(" ", "").replace(",", "")
    frac = _SIMPLE_FRAC.fullmatch(compact)
    if frac:
        num, den = _as_number(frac[2]), _as_number(frac[3])
        if num is None or not den:
            return None
        return -num / den if frac[1] else num / den
    return _as_number(compact)


def _paper_text(peeled: str) -> str:
    """A peeled answer with whitespace collapsed, lower-cased: the authors' text form."""
    return " ".join(peeled.split()).lower()


def normalize_answer_paper(answer: str) -> str | float:
    """The authors' in-domain normalisation: a number when the peeled answer reads as one,
    else the peeled text with whitespace collapsed, lower-cased.

    Its own function because :func:`normalize_answer` (the training verifiers' rule, kept
    as it is) also drops a final period and peels unmatched outer braces, and has no
    ``\\frac``; the authors' scorer does none of that, so ``\\boxed{X.}`` is not ``X`` here.
    """
    text = _peel_paper(answer)
    number = _paper_number(text)
    return number if number is not None else _paper_text(text)


def paper_answers_match(prediction: str, gold: str, *, loose: bool) -> bool:
    """The authors' comparison: equal normalised strings, or numbers within 1e-6; ``loose``
    also accepts the normalised gold as a substring of the normalised prediction, compared as
    text (wrappers peeled, spaces collapsed, lower-cased) whether or not either reads as a
    number: ``1987`` is found in ``born in 1987`` and in ``11987``. An empty gold never passes."""
    pred, ref = normalize_answer_paper(prediction), normalize_answer_paper(gold)
    if isinstance(pred, float) and isinstance(ref, float) and abs(pred - ref) <= 1e-6:
        return True
    if isinstance(ref, str) and pred == ref:
        return ref != ""
    if not loose:
        return False
    ref_text = _paper_text(_peel_paper(gold))
    return bool(ref_text) and ref_text in _paper_text(_peel_paper(prediction))


def verify_extract_loose(reply: str, answer: str) -> bool:
    """KGFact in-domain as the authors score it: :func:`extract_answer`, then the loose match."""
    return paper_answers_match(extract_answer(reply), answer, loose=True)


def verify_extract_strict(reply: str, answer: str) -> bool:
    """KGFunc in-domain as the authors score it: :func:`extract_answer`, no substring match."""
    return paper_answers_match(extract_answer(reply), answer, loose=False)


# Read-only (no item assignment): code with its own rule passes that callable instead, as
# mixsd_core's rollout (verifier=...) allows.
VERIFIERS: Registry[Callable[[str, str], bool]] = Registry(
    "verifier",
    {
        "boxed": verify_boxed,
        "boxed-exact": verify_boxed_exact,
        "boxed-or-final-sentence": verify_boxed_or_final_sentence,
        "extract-loose": verify_extract_loose,
        "extract-strict": verify_extract_strict,
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
