from __future__ import annotations

import re

from kgworld._names import common_words, entity_names

DOMAINS = ["Person", "Location", "Organization", "Event", "Profession", "Hobby", "Skill"]


def test_names_are_unique_invented_and_deterministic():
    names = entity_names(DOMAINS, 200, seed=3)
    assert names == entity_names(DOMAINS, 200, seed=3)
    assert names != entity_names(DOMAINS, 200, seed=4)
    flat = [n for domain in DOMAINS for n in names[domain]]
    assert len(flat) == 7 * 200
    assert len({n.lower() for n in flat}) == len(flat)
    words = common_words()
    assert len(words) > 20000 and "house" in words
    for name in flat:
        # The invented parts are the capitalised words (suffixes like "Dynamics" are real words).
        cores = re.findall(r"[A-Z][a-z]+", name)
        invented = [
            c for c in cores if not name.endswith(c) or " " not in name or name.count(" ") == 1
        ]
        assert any(c.lower() not in words for c in invented), name
        assert re.fullmatch(r"[A-Za-z ]+", name), name


def test_person_names_have_two_invented_parts():
    words = common_words()
    for name in entity_names(["Person"], 300, seed=0)["Person"]:
        first, last = name.split(" ")
        assert first.lower() not in words and last.lower() not in words
        assert re.search(r"[aeiouy]", first.lower()) and re.search(r"[aeiouy]", last.lower())


def test_a_second_slice_leaves_the_first_unchanged():
    """The retrieval KB's names are slice [M:2M] of 2M names whose first M are the world's."""
    first = entity_names(DOMAINS[:5], 10, seed=42)
    both = entity_names(DOMAINS[:5], 10, seed=42, slices=2)
    assert {d: names[:10] for d, names in both.items()} == first
    flat = [n.lower() for names in both.values() for n in names]
    assert len(flat) == len(set(flat)) == 100
