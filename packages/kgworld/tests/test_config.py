from __future__ import annotations

import json

import pytest

import kgworld
import mixsd_base
from kgworld import ConfigError, load_config, resolve_config


def test_presets_set_sizes_and_defaults_match_the_paper():
    assert resolve_config().kgfact.domains == 5
    small = resolve_config(overrides={"preset": "small"})
    large = resolve_config(overrides={"preset": "large"})
    assert (small.kgfact.domains, small.kgfact.entities_per_domain) == (5, 10)
    assert (large.kgfact.domains, large.kgfact.entities_per_domain) == (7, 25)
    assert large.kgfunc.train_size == 1600 and large.kgfunc.test_per_op == 25


def test_kgfact_forms_default_to_the_papers_and_take_names():
    paper = "Please reason step by step, and put your final answer within \\boxed{}."
    for preset in (None, "small", "large"):
        kgfact = resolve_config(overrides={"preset": preset}).kgfact
        assert (kgfact.instruction, kgfact.target) == (paper, "answer")
    assert kgworld.STEP_BY_STEP_INSTRUCTION == paper == resolve_config().kgfunc.instruction
    one = "Answer in one sentence and put the final answer within \\boxed{}."
    assert one == kgworld.ONE_SENTENCE_INSTRUCTION
    named = resolve_config({"kgfact": {"instruction": "one-sentence", "target": "statement"}})
    assert (named.kgfact.instruction, named.kgfact.target) == (one, "statement")
    assert resolve_config({"kgfact": {"instruction": "step-by-step"}}).kgfact.instruction == paper
    assert kgworld.KGFactConfig(instruction="one-sentence").instruction == one  # Python API too
    assert (
        resolve_config({"kgfact": {"instruction": "Be brief."}}).kgfact.instruction == "Be brief."
    )
    with pytest.raises(ConfigError, match=r"field 'kgfact\.target': must be one of"):
        resolve_config({"kgfact": {"target": "sentence"}})


def test_precedence_defaults_preset_file_flags():
    config = resolve_config(
        {"preset": "large", "kgfact": {"entities_per_domain": 12}, "seed": 1},
        {"seed": 3, "kgfact": {"domains": 6}},
    )
    assert (config.kgfact.domains, config.kgfact.entities_per_domain, config.seed) == (6, 12, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sed": 1}, "field 'sed': unknown key \\(did you mean 'seed'\\?\\)"),
        ({"kgfact": {"domain": 3}}, "field 'kgfact.domain': unknown key"),
        ({"kgfact": {"domains": "five"}}, "field 'kgfact.domains': expected an integer"),
        ({"kgfact": {"domains": True}}, "field 'kgfact.domains': expected an integer"),
        ({"kgfact": {"domains": 1}}, "field 'kgfact.domains': must be at least 2"),
        ({"kgfact": {"entities_per_domain": 0}}, "entities_per_domain': must be >= 1"),
        ({"kgfact": {"splits": ["train", "bogus"]}}, "kgfact.splits': unknown split 'bogus'"),
        ({"kgfact": {"splits": "train"}}, "field 'kgfact.splits': expected a list"),
        ({"kgfunc": {"train_ops": "BB"}}, "field 'kgfunc.train_ops': has duplicate labels"),
        ({"preset": "medium"}, "field 'preset': unknown preset 'medium'"),
        ({"kgfact": 3}, "field 'kgfact': expected a mapping"),
    ],
)
def test_bad_values_name_the_field(data, message):
    with pytest.raises(ConfigError, match=message) as info:
        resolve_config(data)
    # kgworld's ConfigError is both kgworld's and the shared base's, so either catch works.
    assert isinstance(info.value, kgworld.KGWorldError)
    assert isinstance(info.value, mixsd_base.ConfigError)


def test_op_labels_may_be_spelled_as_one_string():
    config = resolve_config({"kgfunc": {"train_ops": "BCD", "unseen_ops": ["a", "b"]}})
    assert (config.kgfunc.train_ops, config.kgfunc.unseen_ops) == (["B", "C", "D"], ["a", "b"])


def test_none_flags_are_unset_but_nested_null_sets_null():
    config = resolve_config({"seed": 5}, {"seed": None, "preset": None})
    assert config.seed == 5 and config.preset is None
    config = resolve_config(overrides={"edit": {"multihop_per_hops": None}})
    assert config.edit.multihop_per_hops is None


def test_yaml_and_json_files(tmp_path):
    (tmp_path / "c.yaml").write_text("preset: large\nkgfact:\n  twohop_limit: 5\n")
    assert load_config(tmp_path / "c.yaml").kgfact.twohop_limit == 5
    (tmp_path / "c.json").write_text(json.dumps({"kgfunc": {"enabled": False}}))
    assert load_config(tmp_path / "c.json").kgfunc.enabled is False


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.yaml", "seed: 1\nkgfact: [unclosed\n", r"bad\.yaml:3: invalid YAML"),
        ("unknown.yaml", "kgfact:\n  entities: 3\n", r"unknown\.yaml:2: field 'kgfact\.entities': unknown key"),
        ("typed.yaml", "seed: 1\nkgfunc:\n  enabled: true\n  train_size: many\n", r"typed\.yaml:4: field 'kgfunc\.train_size': expected an integer"),
        ("checked.yaml", "kgfact:\n  domains: 5\n  twohop_limit: -1\n", r"checked\.yaml:3: field 'kgfact\.twohop_limit': must be >= 0"),
        ("list.json", "[1, 2]", r"list\.json: a config file must be a mapping"),
        ("missing.yaml", None, r"missing\.yaml: config file not found"),
    ],
)  # fmt: skip
def test_bad_files_name_file_and_line(tmp_path, name, text, message):
    if text is not None:
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / name)


def test_a_file_extends_another(tmp_path):
    (tmp_path / "base.yaml").write_text("preset: large\nkgfact:\n  twohop_limit: 5\n")
    (tmp_path / "top.yaml").write_text("extends: base.yaml\nkgfact:\n  retrieval_limit: 3\n")
    config = load_config(tmp_path / "top.yaml", {"seed": 9})
    assert (config.kgfact.entities_per_domain, config.kgfact.twohop_limit) == (25, 5)
    assert (config.kgfact.retrieval_limit, config.seed) == (3, 9)
    (tmp_path / "base.yaml").write_text("kgfact:\n  domains: 1\n")
    with pytest.raises(ConfigError, match=r"base\.yaml:2: field 'kgfact\.domains'"):
        load_config(tmp_path / "top.yaml")


def test_impossible_worlds_are_refused():
    with pytest.raises(ConfigError, match="relation schema covers 7 domains"):
        kgworld.generate(resolve_config({"kgfact": {"domains": 8}}))
    with pytest.raises(ConfigError, match="has only 10 authored relations"):
        kgworld.generate(resolve_config({"kgfact": {"relations_per_pair": 11}}))
    tiny = {"kgfact": {"domains": 2, "entities_per_domain": 3}, "kgfunc": {"enabled": False}}
    with pytest.raises(ConfigError, match="needs at least 50 facts, but this world has 3"):
        kgworld.generate(resolve_config(tiny))
