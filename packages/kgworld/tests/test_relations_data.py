"""Checks on the hand-written relation templates in kgworld/data/relations.json."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from typing import Any

import pytest

SUBJ, OBJ = "{subject}", "{object}"


def _raw() -> str:
    return (files("kgworld") / "data" / "relations.json").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return json.loads(_raw())


@pytest.fixture(scope="module")
def relations(data: dict[str, Any]) -> list[dict[str, Any]]:
    return data["relations"]


@pytest.fixture(scope="module")
def labels(data: dict[str, Any]) -> dict[str, str]:
    """Domain name -> the word its questions use for it."""
    return {d["name"]: d["label"] for d in data["domains"]}


def _texts(rel: dict[str, Any]) -> list[str]:
    return [rel["statement"], *rel["questions"], rel["relative"]]


def test_file_is_ascii_json_with_two_space_indent() -> None:
    raw = _raw()
    assert raw.isascii()
    parsed = json.loads(raw)
    assert raw.rstrip("\n") == json.dumps(parsed, indent=2, ensure_ascii=True)


def test_top_level_keys(data: dict[str, Any]) -> None:
    assert set(data) == {"domains", "relations"}


def test_domain_labels_are_the_lowercase_names(data: dict[str, Any]) -> None:
    assert all(set(d) == {"name", "label"} for d in data["domains"])
    assert all(d["label"] == d["name"].lower() for d in data["domains"])


def test_each_domain_pair_has_ten_uniquely_named_relations(
    data: dict[str, Any], relations: list[dict[str, Any]]
) -> None:
    # Grouped by ordered pair (earlier domain -> later), pairs in domain order, ten each.
    domains = [d["name"] for d in data["domains"]]
    pairs = [(a, b) for i, a in enumerate(domains) for b in domains[i + 1 :]]
    assert [(r["source"], r["target"]) for r in relations] == [p for p in pairs for _ in range(10)]
    names = [r["name"] for r in relations]
    assert len(set(names)) == len(names) == 210


def test_relation_keys(relations: list[dict[str, Any]]) -> None:
    keys = {"name", "source", "target", "statement", "questions", "relative"}
    for rel in relations:
        assert set(rel) == keys, rel["name"]
        assert all(isinstance(t, str) and t == t.strip() and t for t in _texts(rel))


def test_only_known_placeholders(relations: list[dict[str, Any]]) -> None:
    for rel in relations:
        for text in _texts(rel):
            stripped = text.replace(SUBJ, "").replace(OBJ, "")
            assert "{" not in stripped and "}" not in stripped, (rel["name"], text)


def test_statements(relations: list[dict[str, Any]]) -> None:
    for rel in relations:
        st = rel["statement"]
        assert st.count(SUBJ) == 1, rel["name"]
        assert st.count(OBJ) == 1, rel["name"]
        assert st.endswith(OBJ + "."), rel["name"]
        assert st.index(SUBJ) < st.index(OBJ), rel["name"]
        assert st.count(".") == 1 and "?" not in st, rel["name"]


def test_questions(relations: list[dict[str, Any]], labels: dict[str, str]) -> None:
    for rel in relations:
        qs = rel["questions"]
        label = labels[rel["target"]]
        assert isinstance(qs, list) and len(qs) == 3, rel["name"]
        assert len(set(qs)) == 3, rel["name"]
        for q in qs:
            assert q.count(SUBJ) == 1, (rel["name"], q)
            assert OBJ not in q, (rel["name"], q)
            assert q.endswith("?") and q.count("?") == 1, (rel["name"], q)
            assert re.search(rf"\b{label}\b", q), (rel["name"], q)
            assert SUBJ + "'s" not in q, (rel["name"], q)


def test_question_paraphrases_differ_in_more_than_one_word(
    relations: list[dict[str, Any]],
) -> None:
    for rel in relations:
        words = [q.lower().rstrip("?").split() for q in rel["questions"]]
        for i in range(3):
            for j in range(i + 1, 3):
                a, b = words[i], words[j]
                if len(a) == len(b):
                    diff = sum(x != y for x, y in zip(a, b, strict=True))
                    assert diff > 1, (rel["name"], rel["questions"][i], rel["questions"][j])


def test_question_templates_unique_across_file(relations: list[dict[str, Any]]) -> None:
    seen: dict[str, str] = {}
    for rel in relations:
        for q in rel["questions"]:
            assert q not in seen, f"{q!r} used by {seen.get(q)} and {rel['name']}"
            seen[q] = rel["name"]
    assert len(seen) == 630


def test_relatives(relations: list[dict[str, Any]], labels: dict[str, str]) -> None:
    for rel in relations:
        r = rel["relative"]
        assert r.startswith("the " + labels[rel["target"]] + " "), rel["name"]
        assert r.count(SUBJ) == 1, rel["name"]
        assert OBJ not in r, rel["name"]
        assert r[-1].isalnum() or r.endswith(SUBJ), rel["name"]
        assert SUBJ + "'s" not in r, rel["name"]


def test_relatives_substitute_into_questions(relations: list[dict[str, Any]]) -> None:
    """A relative of a relation targeting domain D can fill the subject slot of D's relations."""
    by_source: dict[str, list[dict[str, Any]]] = {}
    for rel in relations:
        by_source.setdefault(rel["source"], []).append(rel)
    for inner in relations:
        np = inner["relative"].replace(SUBJ, "Xylirra Vokth")
        for outer in by_source.get(inner["target"], []):
            for q in outer["questions"]:
                filled = q.replace(SUBJ, np)
                assert "{" not in filled and filled.endswith("?")
