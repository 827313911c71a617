"""Invented, pronounceable entity names that no model can already know.

A name is built from syllables (onset + vowel + optional coda), so it can be read aloud,
and every invented part is rejected when it is a common English word (the 30,000 most
frequent, ``data/common_words.txt``). Each domain dresses its invented core in its own style
("Mount Aldris", "Vethrac Dynamics", "Orlune Weaving") and every full name is unique
across the whole world.
"""

from __future__ import annotations

import random
import re
from functools import cache
from importlib import resources

from kgworld._config import KGWorldError
from kgworld._rng import derived_rng, pick

_ONSETS = [
    "b",
    "bl",
    "br",
    "d",
    "dr",
    "f",
    "fl",
    "g",
    "gr",
    "h",
    "j",
    "k",
    "kl",
    "kr",
    "l",
    "m",
    "n",
    "p",
    "pr",
    "r",
    "s",
    "sk",
    "st",
    "t",
    "tr",
    "v",
    "vr",
    "z",
    "th",
    "sh",
]
_VOWELS = ["a", "e", "i", "o", "u", "a", "e", "o", "ae", "ei", "ou", "y"]
_CODAS = ("", "", "", "n", "r", "l", "s", "th", "x", "rn", "nd", "sk", "m", "v")

# Doubled letters other than l/s/r/n/e/o read badly ("vv", "kk", "yy").
_AWKWARD = re.compile(r"([^lsrneo])\1")

# Each domain's style: a template per variant, "{core}" is the invented word.
_STYLES: dict[str, tuple[str, ...]] = {
    "Person": ("{core} {core2}",),
    "Location": (
        "{core}",
        "Mount {core}",
        "{core} Harbor",
        "Port {core}",
        "{core} Vale",
        "{core}ford",
    ),
    "Organization": (
        "{core} Dynamics",
        "{core} Collective",
        "{core} Institute",
        "{core} Guild",
        "{core} Consortium",
        "{core} Works",
    ),
    "Event": (
        "{core} Summit",
        "{core} Festival",
        "{core} Accord",
        "{core} Games",
        "{core} Symposium",
        "{core} Expo",
    ),
    "Profession": (
        "{core} keeper",
        "{core}wright",
        "{core} tender",
        "{core} warden",
        "{core} scribe",
    ),
    "Hobby": (
        "{core} weaving",
        "{core} racing",
        "{core} carving",
        "{core} gliding",
        "{core} tracing",
    ),
    "Skill": ("{core} calibration", "{core} reckoning", "{core} binding", "{core} mapping"),
}


@cache
def common_words() -> frozenset[str]:
    text = resources.files("kgworld").joinpath("data/common_words.txt").read_text("utf-8")
    return frozenset(text.split())


@cache
def _syllables() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Opening syllables (onset + vowel) and later ones (onset + vowel + optional coda)."""
    opening = tuple(o + v for o in _ONSETS for v in _VOWELS)
    later = tuple(o + v + c for o in _ONSETS for v in _VOWELS for c in _CODAS)
    return opening, later


def _core(rng: random.Random, words: frozenset[str]) -> str:
    opening, later = _syllables()
    while True:
        word = pick(rng, opening) + pick(rng, later)
        if rng.random() < 1 / 3:
            word += pick(rng, later)
        if 4 <= len(word) <= 10 and word not in words and not _AWKWARD.search(word):
            return word.capitalize()


def entity_names(
    domains: list[str], per_domain: int, seed: int, slices: int = 1
) -> dict[str, list[str]]:
    """``slices x per_domain`` unique invented names for each domain, deterministic in ``seed``.

    Names are drawn slice by slice (every domain's first ``per_domain``, then every domain's
    next ones, ...), each domain from its own stream, so the first slice does not depend on
    ``slices``: the training world's names are the same whether or not a second slice (the
    retrieval knowledge base's entities) is drawn after them.
    """
    words = common_words()
    taken: set[str] = set()
    names: dict[str, list[str]] = {domain: [] for domain in domains}
    streams = {domain: derived_rng(seed, "names", domain) for domain in domains}
    for _ in range(slices):
        for domain in domains:
            styles = _STYLES.get(domain)
            if styles is None:
                raise KGWorldError(f"no naming style for domain {domain!r}")
            rng, found = streams[domain], names[domain]
            wanted = len(found) + per_domain
            budget = 50 * per_domain + 1000  # a collision-bound guard, never reached in practice
            while len(found) < wanted:
                budget -= 1
                if budget < 0:
                    raise KGWorldError(f"cannot invent {wanted} unique {domain} names")
                name = pick(rng, styles).format(core=_core(rng, words), core2=_core(rng, words))
                if name.lower() not in taken:
                    taken.add(name.lower())
                    found.append(name)
    return names
