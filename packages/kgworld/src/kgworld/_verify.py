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

Open-domain answers (question-answer files, ``kgworld import-qa``): ``boxed-exact`` is the
authors' SimpleQA rollout rule too (their ``boxed`` extraction mode; this registry's ``boxed``
is the lenient form above, kept as it was). ``qa-normalized`` compares the last box with the gold
after :func:`normalize_open_answer` (case, accents, punctuation, the articles a/an/the, spacing,
digit-group separators; equal numbers match); without a box, the normalised gold as a phrase of
the final sentence. ``qa-paper`` is the authors' SimpleQA scorer (FACTS.md §5). A record's
aliases (``meta.answer_aliases``) are tried as golds wherever a reply is checked: rollouts,
training validation and evaluation (:func:`verify_record`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

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
# Open-domain normalisation: a comma or thin / no-break space between digit groups (1,234),
# a period that is not a decimal point, other punctuation, English articles.
_DIGIT_GROUP = re.compile(r"(?<=\d)[,\u00a0\u202f\u2009](?=\d{3}(?!\d))")
_NOT_DECIMAL_POINT = re.compile(r"(?<!\d)\.|\.(?!\d)")
_PUNCTUATION = re.compile(r"[^\w\s.]|_")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


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


def normalize_open_answer(answer: str) -> str:
    """An open-domain answer's comparable form: ``$`` and LaTeX text wrappers peeled, digit-group
    separators dropped (``1,234`` -> ``1234``), accents dropped, lower-cased, punctuation other
    than a decimal point made a space, the articles a / an / the dropped, spaces collapsed."""
    text = _DIGIT_GROUP.sub("", _peel_paper(answer))
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = _PUNCTUATION.sub(" ", _NOT_DECIMAL_POINT.sub(" ", text))
    return " ".join(_ARTICLES.sub(" ", text).split())


def open_answers_match(prediction: str, gold: str) -> bool:
    """Equal after :func:`normalize_open_answer`, or equal numbers (``3.50`` and ``3.5``); an
    empty gold never passes."""
    pred, ref = normalize_open_answer(prediction), normalize_open_answer(gold)
    if pred == ref:
        return bool(ref)
    a, b = _as_number(pred), _as_number(ref)
    return a is not None and b is not None and abs(a - b) <= 1e-6


def verify_qa_normalized(reply: str, answer: str) -> bool:
    """The last ``\\boxed{}`` matches the gold after open-domain normalisation; a reply without
    a box passes when the normalised gold is a whole phrase of its normalised final sentence."""
    boxed = extract_boxed(reply)
    if boxed is not None:
        return open_answers_match(boxed, answer)
    gold = normalize_open_answer(answer)
    sentence = normalize_open_answer(final_sentence(reply))
    return bool(gold) and re.search(rf"(?<!\w){re.escape(gold)}(?!\w)", sentence) is not None


def verify_qa_paper(reply: str, answer: str) -> bool:
    """The authors' SimpleQA scorer (FACTS.md §5): the last ``\\boxed{}``, else the text after
    ``</think>``, else the whole reply, equals the gold after ``lower()`` and ``strip()``."""
    prediction = extract_boxed(reply)
    if prediction is None:
        prediction = reply.rsplit("</think>", 1)[-1]
    gold = answer.strip().lower()
    return bool(gold) and prediction.strip().lower() == gold


def record_answers(record: Mapping[str, Any]) -> list[str]:
    """The answers a reply to ``record`` may give: its ``answer``, then its aliases
    (``meta.answer_aliases``, written by ``import_qa`` and ``import_mquake``)."""
    meta = record.get("meta") or {}
    aliases = meta.get("answer_aliases") if isinstance(meta, Mapping) else None
    extra = [a for a in aliases or [] if isinstance(a, str) and a.strip()]
    return [str(record["answer"]), *extra]


def verify_record(
    reply: str, record: Mapping[str, Any], verifier: Callable[[str, str], bool]
) -> bool:
    """Whether ``reply`` passes ``verifier`` against any of ``record``'s answers
    (:func:`record_answers`): the one check the rollouts, training validation and in-domain
    evaluation share, so an alias counts the same everywhere."""
    return any(verifier(reply, gold) for gold in record_answers(record))


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
        "qa-normalized": verify_qa_normalized,
        "qa-paper": verify_qa_paper,
    },
)


def get_verifier(name: str) -> Callable[[str, str], bool]:
    """Look a verifier up by name; an unknown name is an ``UnknownNameError`` (a ``KeyError``
    and a ``mixsd_base.ConfigError``) with a did-you-mean and the known names."""
    return VERIFIERS.get_or_fail(name)


def verify(reply: str, answer: str, mode: str = "boxed") -> bool:
    """Check ``reply`` against the gold ``answer`` with the verifier named ``mode``."""
    return get_verifier(mode)(reply, answer)
