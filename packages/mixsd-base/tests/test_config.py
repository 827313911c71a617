from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from mixsd_base import (
    ConfigError,
    UserError,
    build_config,
    load_config,
    parse_overrides,
    read_config_file,
)


@dataclass
class Section:
    size: int = field(default=3, metadata={"help": "How many."})
    names: list[str] = field(default_factory=list, metadata={"help": "Names."})

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ConfigError("must be positive", field="size")


@dataclass
class Top:
    lr: float = field(default=1e-5, metadata={"help": "Learning rate."})
    mode: Literal["fast", "slow"] = field(default="fast", metadata={"help": "Mode."})
    limit: int | None = field(default=None, metadata={"help": "Limit."})
    section: Section = field(default_factory=Section, metadata={"help": "A section."})


def test_defaults_file_overrides_in_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-4\nsection:\n  size: 5\n", encoding="utf-8")
    cfg = load_config(Top, path, {"section.size": 7, "limit": None})
    assert cfg.lr == 1e-4  # YAML 1.1 reads 1e-4 as a string: converted to float
    assert cfg.section.size == 7
    assert cfg.limit is None  # None in an override means unset


@pytest.mark.parametrize(
    ("text", "where_and_what"),
    [
        (
            "lr: 0.1\nsection:\n  sise: 5\n",
            "3: field 'section.sise': unknown key (did you mean 'size'?)",
        ),
        # an error raised by __post_init__ gets the line of the field it names
        ("section:\n  size: 0\n", "2: field 'section.size': must be positive"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path, text, where_and_what):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(Top, path)
    assert str(info.value) == f"{path}:{where_and_what}"


def test_wrong_type_and_literal(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("mode: fats\n", encoding="utf-8")
    with pytest.raises(
        ConfigError,
        match=r"c.yaml:1: field 'mode': 'fats' is not allowed \(did you mean 'fast'\?\)",
    ):
        load_config(Top, path)
    with pytest.raises(ConfigError, match=r"field 'section\.size': expected an integer, got 'x'"):
        load_config(Top, None, parse_overrides(["section.size=x"]))


def test_a_section_built_beforehand_is_kept():
    section = Section(size=9)
    cfg = build_config(Top, {"section": section})
    assert cfg.section is section
    with pytest.raises(ConfigError, match="field 'section': expected a mapping, got int"):
        build_config(Top, {"section": 3})


def test_extends_merges_and_keeps_lines(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "lr: 0.5\nsection:\n  size: 2\n  names: [a]\n", encoding="utf-8"
    )
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nsection:\n  size: 4\n", encoding="utf-8")
    cfg = load_config(Top, child)
    assert (cfg.lr, cfg.section.size, cfg.section.names) == (0.5, 4, ["a"])
    source = read_config_file(child)
    assert source.locate(("lr",)) == (str(tmp_path / "base.yaml"), 1)
    assert source.locate(("section", "size")) == (str(child), 3)


def test_extends_cycle_and_missing(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cycle"):
        read_config_file(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: nope.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"c.yaml:1: field 'extends': .*nope.yaml not found"):
        read_config_file(tmp_path / "c.yaml")


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: invalid YAML"):
        read_config_file(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a mapping"):
        read_config_file(listy)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"a: 1\n\xff\n")
    with pytest.raises(UserError, match=r"bin.yaml:2: not UTF-8"):
        read_config_file(binary)
    with pytest.raises(UserError, match="not found"):
        read_config_file(tmp_path / "missing.yaml")


def test_parse_overrides():
    assert parse_overrides(["a.b=1", "c=[x, y]", "d="]) == {
        "a": {"b": 1},
        "c": ["x", "y"],
        "d": None,
    }
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["novalue"])
