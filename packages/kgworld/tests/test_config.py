from __future__ import annotations

import json

import pytest

import kgworld
from kgworld import ConfigError, load_config, resolve_config


def test_presets_set_sizes_and_defaults_match_the_paper():
    assert resolve_config().kgfact.domains == 5
    small = resolve_config(overrides={"preset": "small"})
    large = resolve_config(overrides={"preset": "large"})
    assert (small.kgfact.domains, small.kgfact.entities_per_domain) == (5, 10)
    assert (large.kgfact.domains, large.kgfact.entities_per_domain) == (7, 25)
    assert large.kgfunc.train_size == 1600 and large.kgfunc.test_per_op == 25


def test_precedence_defaults_preset_file_flags():
    config = resolve_config(
        {"preset": "large", "kgfact": {"entities_per_domain": 12}, "seed": 1},
        {"seed": 3, "kgfact": {"domains": 6}},
    )
    assert (config.kgfact.domains, config.kgfact.entities_per_domain, config.seed) == (6, 12, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sed": 1}, "unknown key sed"),
        ({"kgfact": {"domain": 3}}, "unknown key kgfact.domain"),
        ({"kgfact": {"domains": "five"}}, "kgfact.domains: expected an integer"),
        ({"kgfact": {"domains": True}}, "kgfact.domains: expected an integer"),
        ({"kgfact": {"domains": 1}}, "at least 2"),
        ({"kgfact": {"entities_per_domain": 0}}, "positive integer"),
        ({"kgfact": {"splits": ["train", "bogus"]}}, "unknown split 'bogus'"),
        ({"kgfunc": {"train_ops": "BB"}}, "duplicate labels"),
        ({"preset": "medium"}, "unknown preset 'medium'"),
        ({"kgfact": 3}, "expected a mapping"),
    ],
)
def test_bad_values_name_the_field(data, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(data)


def test_yaml_and_json_files(tmp_path):
    (tmp_path / "c.yaml").write_text("preset: large\nkgfact:\n  twohop_limit: 5\n")
    assert load_config(tmp_path / "c.yaml").kgfact.twohop_limit == 5
    (tmp_path / "c.json").write_text(json.dumps({"kgfunc": {"enabled": False}}))
    assert load_config(tmp_path / "c.json").kgfunc.enabled is False


def test_bad_files_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\nkgfact: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: invalid YAML"):
        load_config(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("kgfact:\n  entities: 3\n")
    with pytest.raises(ConfigError, match=r"unknown\.yaml:2: unknown key kgfact\.entities"):
        load_config(unknown)
    typed = tmp_path / "typed.yaml"
    typed.write_text("seed: 1\nkgfunc:\n  enabled: true\n  train_size: many\n")
    with pytest.raises(
        ConfigError, match=r"typed\.yaml:4: kgfunc\.train_size: expected an integer"
    ):
        load_config(typed)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    top = tmp_path / "list.json"
    top.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(top)


def test_impossible_worlds_are_refused():
    with pytest.raises(ConfigError, match="relation schema covers 7 domains"):
        kgworld.generate(resolve_config({"kgfact": {"domains": 8}}))
    with pytest.raises(ConfigError, match="has only 10 authored relations"):
        kgworld.generate(resolve_config({"kgfact": {"relations_per_pair": 11}}))
    tiny = {"kgfact": {"domains": 2, "entities_per_domain": 3}, "kgfunc": {"enabled": False}}
    with pytest.raises(ConfigError, match="needs at least 50 facts, but this world has 3"):
        kgworld.generate(resolve_config(tiny))
