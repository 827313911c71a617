"""Checks on the hand-written relation templates in kgworld/data/relations.json."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from typing import Any

import pytest

DOMAINS = ["Person", "Location", "Organization", "Event", "Profession", "Hobby", "Skill"]

EXPECTED: dict[tuple[str, str], list[str]] = {
    ("Person", "Location"): [
        "resides_in",
        "visits",
        "was_born_in",
        "works_in",
        "relocated_to",
        "is_from",
        "commutes_to",
        "vacations_in",
        "is_stranded_in",
        "explores",
    ],
    ("Person", "Organization"): [
        "is_employed_by",
        "is_member_of",
        "founded",
        "advises",
        "invests_in",
        "volunteers_for",
        "consults_for",
        "is_board_member_of",
        "was_fired_by",
        "is_alumni_of",
    ],
    ("Person", "Event"): [
        "participates_in",
        "organizes",
        "attends",
        "speaks_at",
        "sponsors",
        "judges",
        "volunteers_at",
        "is_honored_at",
        "boycotts",
        "is_excluded_from",
    ],
    ("Person", "Profession"): [
        "practices",
        "studies",
        "retired_from",
        "is_certified_in",
        "is_training_for",
        "transitioned_from",
        "excels_at",
        "struggles_with",
        "teaches",
        "is_pioneer_in",
    ],
    ("Person", "Hobby"): [
        "actively_pursues",
        "is_interested_in",
        "has_mastered",
        "is_beginner_at",
        "abandoned",
        "teaches_per_hob",
        "competes_in",
        "discovered",
        "is_obsessed_with",
        "shares",
    ],
    ("Person", "Skill"): [
        "masters",
        "is_learning",
        "lacks",
        "demonstrates",
        "teaches_per_skl",
        "is_certified_in_per_skl",
        "is_renowned_for",
        "is_developing",
        "applies",
        "underestimates",
    ],
    ("Location", "Organization"): [
        "is_headquarters_for",
        "is_regulated_by",
        "hosts_branch_of",
        "is_serviced_by",
        "is_developed_by",
        "is_protected_by",
        "is_polluted_by",
        "is_marketed_by",
        "is_researched_by",
        "is_owned_by",
    ],
    ("Location", "Event"): [
        "is_venue_for",
        "is_affected_by",
        "is_origin_of",
        "is_destination_for",
        "is_transformed_by",
        "is_commemorated_by",
        "is_damaged_by",
        "is_celebrated_at",
        "is_evacuated_during",
        "is_discovered_at",
    ],
    ("Location", "Profession"): [
        "is_hub_for",
        "lacks_loc_pro",
        "attracts",
        "trains",
        "exports",
        "is_dangerous_for",
        "is_ideal_for",
        "regulates",
        "celebrates",
        "is_underserved_by",
    ],
    ("Location", "Hobby"): [
        "is_destination_for_loc_hob",
        "is_unsuitable_for",
        "is_famous_for",
        "restricts",
        "encourages",
        "hosts_competitions_for",
        "provides_resources_for",
        "is_birthplace_of",
        "is_dangerous_for_loc_hob",
        "is_overlooked_for",
    ],
    ("Location", "Skill"): [
        "is_known_for",
        "demands",
        "teaches_loc_skl",
        "lacks_expertise_in",
        "exports_loc_skl",
        "values",
        "is_training_ground_for",
        "preserves",
        "is_underserved_in",
        "is_innovating_in",
    ],
    ("Organization", "Event"): [
        "hosts",
        "sponsors_org_evt",
        "organizes_org_evt",
        "participates_in_org_evt",
        "boycotts_org_evt",
        "is_honored_at_org_evt",
        "is_criticized_at",
        "announces_at",
        "recruits_at",
        "withdraws_from",
    ],
    ("Organization", "Profession"): [
        "employs",
        "certifies",
        "trains_org_pro",
        "lobbies_for",
        "regulates_org_pro",
        "outsources_org_pro",
        "automates_org_pro",
        "recruits",
        "is_dominated_by",
        "undervalues",
    ],
    ("Organization", "Hobby"): [
        "facilitates_org_hob",
        "prohibits_org_hob",
        "sponsors_org_hob",
        "monetizes",
        "promotes",
        "hosts_events_for",
        "provides_resources_for_org_hob",
        "regulates_org_hob",
        "discourages",
        "is_inspired_by_org_hob",
    ],
    ("Organization", "Skill"): [
        "requires_org_skl",
        "teaches_org_skl",
        "certifies_org_skl",
        "values_org_skl",
        "lacks_org_skl",
        "develops_org_skl",
        "outsources_org_skl",
        "automates_org_skl",
        "benchmarks",
        "is_renowned_for_org_skl",
    ],
    ("Event", "Profession"): [
        "showcases",
        "excludes",
        "honors",
        "recruits_evt_pro",
        "trains_evt_pro",
        "debates",
        "certifies_evt_pro",
        "disrupts",
        "celebrates_evt_pro",
        "criticizes_evt_pro",
    ],
    ("Event", "Hobby"): [
        "celebrates_evt_hob",
        "features_competition_in",
        "promotes_evt_hob",
        "introduces",
        "bans_evt_hob",
        "showcases_evt_hob",
        "awards",
        "monetizes_evt_hob",
        "revives",
        "trivializes",
    ],
    ("Event", "Skill"): [
        "requires_evt_skl",
        "teaches_evt_skl",
        "tests_evt_skl",
        "showcases_evt_skl",
        "certifies_evt_skl",
        "develops_evt_skl",
        "rewards",
        "undervalues_evt_skl",
        "highlights",
        "debates_evt_skl",
    ],
    ("Profession", "Hobby"): [
        "evolves_from",
        "is_complemented_by",
        "monetizes_pro_hob",
        "discourages_pro_hob",
        "requires_pro_hob",
        "inspires_pro_hob",
        "overlaps_with",
        "is_distracted_by",
        "benefits_from",
        "is_gateway_to",
    ],
    ("Profession", "Skill"): [
        "requires_pro_skl",
        "develops_pro_skl",
        "certifies_pro_skl",
        "values_pro_skl",
        "teaches_pro_skl",
        "automates_pro_skl",
        "undervalues_pro_skl",
        "is_defined_by",
        "benchmarks_pro_skl",
        "is_disrupted_by_pro_skl",
    ],
    ("Hobby", "Skill"): [
        "develops_hob_skl",
        "requires_hob_skl",
        "teaches_hob_skl",
        "refines",
        "is_gateway_to_hob_skl",
        "challenges",
        "is_limited_by",
        "complements",
        "measures",
        "is_enhanced_by",
    ],
}

PAIRS = [(a, b) for i, a in enumerate(DOMAINS) for b in DOMAINS[i + 1 :]]
LABELS = {d: d.lower() for d in DOMAINS}
SUBJ, OBJ = "{subject}", "{object}"


def _raw() -> str:
    return (files("kgworld") / "data" / "relations.json").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return json.loads(_raw())


@pytest.fixture(scope="module")
def relations(data: dict[str, Any]) -> list[dict[str, Any]]:
    return data["relations"]


def _texts(rel: dict[str, Any]) -> list[str]:
    return [rel["statement"], *rel["questions"], rel["relative"]]


def test_expected_table_is_consistent() -> None:
    assert list(EXPECTED) == PAIRS
    assert len(PAIRS) == 21
    names = [n for ns in EXPECTED.values() for n in ns]
    assert all(len(ns) == 10 for ns in EXPECTED.values())
    assert len(names) == len(set(names)) == 210


def test_file_is_ascii_json_with_two_space_indent() -> None:
    raw = _raw()
    assert raw.isascii()
    parsed = json.loads(raw)
    assert raw.rstrip("\n") == json.dumps(parsed, indent=2, ensure_ascii=True)


def test_top_level_keys(data: dict[str, Any]) -> None:
    assert set(data) == {"domains", "relations"}


def test_domains(data: dict[str, Any]) -> None:
    assert data["domains"] == [{"name": d, "label": LABELS[d]} for d in DOMAINS]


def test_relation_names_and_order(relations: list[dict[str, Any]]) -> None:
    assert len(relations) == 210
    expected = [(s, t, n) for (s, t), ns in EXPECTED.items() for n in ns]
    got = [(r["source"], r["target"], r["name"]) for r in relations]
    assert got == expected


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


def test_questions(relations: list[dict[str, Any]]) -> None:
    for rel in relations:
        qs = rel["questions"]
        label = LABELS[rel["target"]]
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


def test_relatives(relations: list[dict[str, Any]]) -> None:
    for rel in relations:
        r = rel["relative"]
        assert r.startswith("the " + LABELS[rel["target"]] + " "), rel["name"]
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
