"""The edit split (counterfactual edits, paraphrase, multi-hop, locality) and MQuAKE import."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from typer.testing import CliRunner

import kgworld
from kgworld import ConfigError, KGWorldError
from kgworld._schema import load_schema
from kgworld.cli import app

EDIT_FILES = ("train", "paraphrase", "multihop", "locality")


def _world(**edit):
    overrides = {"preset": "small", "seed": 7, "kgfunc": {"enabled": False}}
    if edit:
        overrides["edit"] = edit
    return kgworld.generate(kgworld.resolve_config(overrides=overrides))


def _edited_facts(world) -> dict[tuple[str, str], str]:
    facts = {(s, r): o for s, r, o in world.kg.facts}
    for record in world.records("edit/train"):
        facts[(record["meta"]["subject"], record["meta"]["relation"])] = record["answer"]
    return facts


def test_presets_enable_edits_and_the_default_does_not():
    assert not kgworld.resolve_config().edit.enabled
    small = kgworld.resolve_config(overrides={"preset": "small"}).edit
    large = kgworld.resolve_config(overrides={"preset": "large"}).edit
    assert (small.enabled, small.count, large.enabled, large.count) == (True, 50, True, 100)
    assert "edit/train" not in kgworld.generate(kgworld.resolve_config()).splits


def test_small_world_edit_split_is_sound(small_world):
    counts = small_world.counts()
    assert counts["edit/train"] == counts["edit/paraphrase"] == 50
    assert counts["edit/locality"] == 50  # every unedited fact of a 100-fact world
    assert counts["edit/multihop"] > 0
    assert kgworld.check_world(small_world) == []
    original = {(s, r): o for s, r, o in small_world.kg.facts}
    schema = load_schema()
    for record in small_world.records("edit/train"):
        meta = record["meta"]
        subject, new, old = meta["subject"], record["answer"], meta["old_answer"]
        assert record["split"] == "edit" and record["context"] is None
        assert original[(subject, meta["relation"])] == old != new
        assert small_world.kg.domain_of[new] == small_world.kg.domain_of[old]
        rewrite = meta["rewrite"]
        assert list(rewrite) == ["prompt", "subject", "target_new", "target_true"]
        assert rewrite == {**rewrite, "subject": subject, "target_new": new, "target_true": old}
        assert rewrite["prompt"].count("{}") == 1 and "{subject}" not in rewrite["prompt"]
        # The MEMIT request spells the fact's statement (what the statement-form target restates).
        statement = f"{rewrite['prompt'].format(subject)} {new}."
        assert statement == schema.relations[meta["relation"]].state(subject, new)
        assert record["target"] == f"The answer is {new}.\n\n\\boxed{{{new}}}"  # preset: paper form
        assert record["prompt"].startswith(schema.relations[meta["relation"]].ask(subject, 0))


def test_edited_world_keeps_one_answer_per_question(small_world):
    edited = _edited_facts(small_world)
    subjects = Counter((r, o) for (_, r), o in edited.items())
    assert max(subjects.values()) == 1  # (relation, object) -> subject is still a function
    prompts = [r["prompt"] for name in EDIT_FILES for r in small_world.records(f"edit/{name}")]
    assert len(prompts) == len(set(prompts))


def test_paraphrase_multihop_and_locality_answers(small_world):
    edited = _edited_facts(small_world)
    original = {(s, r): o for s, r, o in small_world.kg.facts}
    train_ids = {r["id"] for r in small_world.records("edit/train")}
    for record in small_world.records("edit/paraphrase"):
        assert record["meta"]["template"] > 0 and record["meta"]["edit_id"] in train_ids
    hops = Counter()
    for record in small_world.records("edit/multihop"):
        meta = record["meta"]
        hops[meta["hops"]] += 1
        new = old = meta["path"][0]
        for relation in meta["relations"]:
            new, old = edited[(new, relation)], original[(old, relation)]
        assert (new, old) == (record["answer"], meta["old_answer"]) and new != old
        assert meta["edit_ids"] and set(meta["edit_ids"]) <= train_ids
        assert meta["path"][-1] == new and meta["old_path"][-1] == old
    assert set(hops) == {2, 3, 4}  # five domains: chains of up to four hops
    locality = small_world.records("edit/locality")
    flags = [r["meta"]["neighbourhood"] for r in locality]
    assert flags == sorted(flags, reverse=True) and flags[0]  # neighbours first
    for record in locality:
        key = (record["meta"]["subject"], record["meta"]["relation"])
        assert record["answer"] == original[key] == edited[key]


def test_config_knobs_shape_the_split():
    world = _world(multihop_max_hops=2, multihop_per_hops=3, locality_count=5, count=10)
    assert {r["meta"]["hops"] for r in world.records("edit/multihop")} == {2}
    assert world.counts()["edit/multihop"] <= 3
    assert world.counts()["edit/locality"] == 5 and world.counts()["edit/train"] == 10
    only = _world(splits=["train", "locality"])
    assert [n for n in only.splits if n.startswith("edit/")] == ["edit/train", "edit/locality"]
    assert kgworld.check_world(only) == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"count": 0}, "field 'edit.count': must be >= 1, got 0"),
        ({"multihop_min_hops": 1}, "field 'edit.multihop_min_hops': must be >= 2"),
        ({"multihop_min_hops": 3, "multihop_max_hops": 2}, "max_hops': 2 is below"),
        ({"splits": ["train", "twohop"]}, "field 'edit.splits': unknown split 'twohop'"),
        ({"locality_count": -1}, "field 'edit.locality_count': must be >= 0"),
        ({"splits": ["multihop"]}, "field 'edit.splits': must include train"),
        ({"cont": 3}, "field 'edit.cont': unknown key \\(did you mean 'count'\\?\\)"),
    ],
)
def test_bad_edit_config_is_one_clear_error(edit, message):
    with pytest.raises(ConfigError, match=message):
        kgworld.resolve_config({"edit": edit})


def test_more_edits_than_facts_is_an_error():
    with pytest.raises(ConfigError, match=r"edit\.count=101 but the world has only 100 facts"):
        _world(count=101)


def test_yaml_error_names_file_and_line(tmp_path):
    config = tmp_path / "world.yaml"
    config.write_text("preset: small\nedit:\n  count: many\n")
    with pytest.raises(ConfigError, match=r"world\.yaml:3: field 'edit\.count': expected an"):
        kgworld.load_config(config)


def test_edit_files_are_byte_identical_across_processes(tmp_path):
    script = (
        "import sys, kgworld;"
        "kgworld.generate(kgworld.resolve_config(overrides={'preset': 'small', 'seed': 3,"
        " 'kgfunc': {'enabled': False}})).write(sys.argv[1])"
    )
    digests = []
    for hash_seed in ("0", "4242"):
        out = tmp_path / f"w{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env)
        digests.append(
            {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "edit").iterdir()}
        )
        manifest = json.loads((out / "manifest.json").read_text())
        assert {f"edit/{n}.jsonl" for n in EDIT_FILES} <= set(manifest["files"])
        assert manifest["counts"]["edit/train"] == 50
    assert digests[0] == digests[1] and len(digests[0]) == 4


def test_check_catches_a_tampered_edit_split(small_world):
    import copy

    for name, field, value in [
        ("edit/locality", "answer", "Nowhere"),
        ("edit/multihop", "answer", "Nowhere"),
        ("edit/paraphrase", "answer", "Nowhere"),
    ]:
        splits = copy.deepcopy(small_world.splits)
        record = splits[name][0]
        record[field] = value
        record["target"] = f"X. \\boxed{{{value}}}"
        world = kgworld.World(small_world.config, small_world.kg, splits)
        problems = kgworld.check_world(world)
        assert problems and record["id"] in problems[0], (name, problems)
    splits = copy.deepcopy(small_world.splits)
    splits["edit/train"][0]["meta"]["rewrite"]["prompt"] = "{} is"
    problems = kgworld.check_world(kgworld.World(small_world.config, small_world.kg, splits))
    assert any("meta.rewrite" in p for p in problems)


def test_every_relation_has_a_rewrite_prompt():
    for relation in load_schema().relations.values():
        prompt = kgworld.rewrite_prompt(relation)
        assert f"{prompt.format('S')} O." == relation.state("S", "O")


# --- MQuAKE --------------------------------------------------------------------------------

MQUAKE = [
    {
        "case_id": 11,
        "requested_rewrite": [
            {
                "prompt": "{} is a citizen of",
                "subject": "Danielle Darrieux",
                "target_new": {"str": "Japan", "id": "Q17"},
                "target_true": {"str": "France", "id": "Q142"},
                "question": "What is the country of citizenship of Danielle Darrieux?",
                "relation_id": "P27",
            }
        ],
        "questions": [
            "What is the capital of the country Danielle Darrieux is a citizen of?",
            "Which city is the capital of Danielle Darrieux's country?",
        ],
        "answer": "Paris",
        "answer_alias": ["City of Light"],
        "new_answer": "Tokyo",
        "new_answer_alias": ["Tokyo City"],
        "new_single_hops": [
            {"question": "?", "cloze": "Danielle Darrieux is a citizen of", "answer": "Japan"},
            {"question": "?", "cloze": "The capital of Japan is", "answer": "Tokyo"},
        ],
    },
    {
        "requested_rewrite": [
            {
                "prompt": "{} is a citizen of",
                "subject": "Danielle Darrieux",
                "target_new": {"str": "Japan"},
                "target_true": {"str": "France"},
            },
            {
                "prompt": "The head of state of {} is",
                "subject": "Japan",
                "target_new": {"str": "Ada Lovelace"},
                "target_true": {"str": "Naruhito"},
            },
        ],
        "questions": ["Who is the head of state of the country Danielle Darrieux is a citizen of?"],
        "answer": "Emmanuel Macron",
        "new_answer": "Ada Lovelace",
    },
]


@pytest.fixture
def mquake_file(tmp_path):
    path = tmp_path / "mquake.json"
    path.write_text(json.dumps(MQUAKE), encoding="utf-8")
    return path


def test_load_mquake_converts_edits_and_multihop(mquake_file):
    records = kgworld.load_mquake(mquake_file)
    edits = [r for r in records if r["split"] == "edit"]
    multihop = [r for r in records if r["split"] == "edit-multihop"]
    assert len(edits) == 2 and len(multihop) == 2  # the repeated rewrite is kept once
    first, second = edits
    assert first["prompt"].startswith("What is the country of citizenship of Danielle Darrieux?")
    assert first["target"] == "Danielle Darrieux is a citizen of Japan. \\boxed{Japan}"
    assert first["answer"] == "Japan" and first["meta"]["relation"] == "P27"
    assert first["meta"]["rewrite"] == {
        "prompt": "{} is a citizen of",
        "subject": "Danielle Darrieux",
        "target_new": "Japan",
        "target_true": "France",
    }
    assert first["meta"]["case_ids"] == [11, 1]
    assert second["prompt"].startswith("Fill in the blank: The head of state of Japan is ___.")
    assert second["meta"]["old_answer"] == "Naruhito"
    mh = multihop[0]
    assert mh["answer"] == "Tokyo" and mh["meta"]["old_answer"] == "Paris"
    assert mh["meta"]["questions"] == MQUAKE[0]["questions"] and mh["meta"]["hops"] == 2
    assert mh["meta"]["answer_aliases"] == ["Tokyo City"]
    assert mh["meta"]["edit_ids"] == [first["id"]]
    assert mh["target"].startswith("Danielle Darrieux is a citizen of Japan. The capital")
    assert multihop[1]["meta"]["edit_ids"] == [first["id"], second["id"]]
    assert all(kgworld.extract_boxed(r["target"]) == r["answer"] for r in records)
    assert len({r["id"] for r in records}) == len(records)
    bare = kgworld.load_mquake(mquake_file, instruction="")
    assert bare[0]["prompt"] == MQUAKE[0]["requested_rewrite"][0]["question"]


def test_import_mquake_cli_writes_an_edit_folder(mquake_file, tmp_path):
    out = tmp_path / "mq"
    result = CliRunner().invoke(app, ["import-mquake", str(mquake_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 edits, 2 multi-hop" in result.output
    train = kgworld.read_jsonl(out / "edit" / "train.jsonl")
    assert train == [r for r in kgworld.load_mquake(mquake_file) if r["split"] == "edit"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "mquake-import" and manifest["counts"]["edit/multihop"] == 2
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest
    with pytest.raises(KGWorldError, match="an MQuAKE import"):
        kgworld.load(out)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c[1].pop("new_answer"), r"case 1: field 'new_answer': missing"),
        (
            lambda c: c[0]["requested_rewrite"][0].update(prompt="Darrieux is a citizen of"),
            r"case 0: field 'requested_rewrite\[0\]\.prompt': must contain",
        ),
        (
            lambda c: c[1]["requested_rewrite"][1].update(target_new="Ada"),
            r"case 1: field 'requested_rewrite\[1\]\.target_new': expected an object",
        ),
        (lambda c: c[0].update(questions="one"), r"case 0: field 'questions': expected a list"),
        (lambda c: c.append(3), r"case 2: expected an object"),
    ],
)
def test_bad_mquake_names_file_case_and_field(tmp_path, mutate, message):
    cases = json.loads(json.dumps(MQUAKE))
    mutate(cases)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cases))
    with pytest.raises(KGWorldError, match=rf"bad\.json: {message}"):
        kgworld.load_mquake(path)


def test_mquake_file_that_is_not_a_list_or_not_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"requested_rewrite": []}')
    with pytest.raises(KGWorldError, match="expected a JSON list"):
        kgworld.load_mquake(path)
    path.write_text("[\n{,")
    with pytest.raises(KGWorldError, match=r"bad\.json:2: invalid JSON"):
        kgworld.load_mquake(path)


def test_read_rewrite_checks_the_request():
    record = {
        "meta": {
            "rewrite": {
                "prompt": "{} resides in",
                "subject": " Mira Solend ",
                "target_new": "Quellport ",
                "target_true": None,
            }
        }
    }
    assert kgworld.read_rewrite(record, "f:1") == kgworld.Rewrite(
        "{} resides in", "Mira Solend", "Quellport", None
    )
    bad = [
        ({"meta": {}}, "f:1: missing field 'meta.rewrite'"),
        ({"meta": {"rewrite": {**record["meta"]["rewrite"], "subject": " "}}}, "'meta.rewrite.subject' must be a non-empty string"),
        ({"meta": {"rewrite": {**record["meta"]["rewrite"], "prompt": "{} and {}"}}}, "must contain '{}' exactly once"),
        ({"meta": {"rewrite": {**record["meta"]["rewrite"], "target_true": 3}}}, "'meta.rewrite.target_true' must be a string or null"),
    ]  # fmt: skip
    for broken, message in bad:
        with pytest.raises(KGWorldError) as info:
            kgworld.read_rewrite(broken, "f:1")
        assert message in str(info.value)
