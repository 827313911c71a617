from __future__ import annotations

from dataclasses import dataclass, fields

import pytest

from mixsd_base import ConfigError, UserError, check_fields, load_config, option


class StageError(UserError):
    pass


@dataclass
class Stage:
    data: str = option("", "Input file.", required=True, pipeline=True)
    batch_size: int = option(8, "Rows per batch.", min=1)
    limit: int | None = option(None, "First N rows (None = all).", min=0)
    alpha: float = option(0.5, "Mixing probability.", interval="[0, 1]")
    top_p: float = option(1.0, "Nucleus mass.", interval="(0, 1]")
    backend: str = option("hf", "Backend.", choices=("hf", "vllm"))
    verifier: str = option("auto", "Verifier.", choices=lambda: ("auto", "integer"))

    def __post_init__(self) -> None:
        check_fields(self, error=StageError)


def test_option_is_a_field_with_help_and_metadata():
    by_name = {f.name: f for f in fields(Stage)}
    assert by_name["data"].metadata == {"help": "Input file.", "required": True, "pipeline": True}
    assert Stage(data="x").batch_size == 8


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"data": ""}, "field 'data': is required"),
        ({"batch_size": 0}, "field 'batch_size': must be >= 1, got 0"),
        ({"limit": -1}, "field 'limit': must be >= 0, got -1"),
        ({"alpha": 1.5}, "field 'alpha': must be in [0, 1], got 1.5"),
        ({"alpha": float("nan")}, "field 'alpha': must be in [0, 1], got nan"),
        ({"alpha": True}, "field 'alpha': must be a number, got True"),
        ({"top_p": 0.0}, "field 'top_p': must be in (0, 1], got 0.0"),
        (
            {"backend": "vlm"},
            "field 'backend': must be one of ['hf', 'vllm'], got 'vlm' (did you mean 'vllm'?)",
        ),
        (
            {"verifier": "int"},
            "field 'verifier': must be one of ['auto', 'integer'], got 'int' (did you mean 'integer'?)",
        ),
    ],
)
def test_check_fields_names_the_field(values, message):
    with pytest.raises(StageError) as info:
        Stage(**{"data": "x", **values})
    assert str(info.value) == message


def test_bounds_hold_at_their_ends_and_none_is_unset():
    Stage(data="x", batch_size=1, limit=None, alpha=0.0, top_p=1.0, verifier="integer")
    Stage(data="x", limit=0, alpha=1.0)


def test_a_loaded_file_adds_file_and_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("data: in.jsonl\nbatch_size: 0\n", encoding="utf-8")
    with pytest.raises(StageError, match=r"s\.yaml:2: field 'batch_size': must be >= 1, got 0"):
        load_config(Stage, path)


def test_the_default_error_is_config_error():
    stage = Stage(data="x")
    stage.batch_size = 0  # set after __post_init__: check again with the default error class
    with pytest.raises(ConfigError, match="field 'batch_size'"):
        check_fields(stage)
