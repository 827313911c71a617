import json
from pathlib import Path

import pytest

from fishertools import FisherError, load_forgetting
from fishertools._forgetting import checkpoint_labels, match_forgetting
from mixsd_base import UserError


def _ckpts(tmp_path: Path) -> list[Path]:
    paths = [tmp_path / "runs" / run / "checkpoint-10" for run in ("a", "b")]
    for p in paths:
        p.mkdir(parents=True)
    return paths


def test_mapping_file_numbers_and_objects(tmp_path: Path):
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"a/checkpoint-10": 0.5, "b/checkpoint-10": {"heldout_drop": 0.1}}))
    assert load_forgetting(path) == {
        "a/checkpoint-10": {"forgetting": 0.5},
        "b/checkpoint-10": {"heldout_drop": 0.1},
    }


def test_eval_folder_schema(tmp_path: Path):
    folder = tmp_path / "evals"
    folder.mkdir()
    (folder / "a.json").write_text(
        json.dumps(
            {
                "checkpoint": "runs/a/checkpoint-10",
                "delta_l_ref": 0.2,
                "heldout_drop": 0.01,
                "tasks": {"gsm8k": 0.3},
            }
        )
    )
    (folder / "b.json").write_text(
        json.dumps({"checkpoint": "runs/b/checkpoint-10", "forgetting": {"mmlu_drop": 0.05}})
    )
    assert load_forgetting(folder) == {
        "runs/a/checkpoint-10": {"delta_l_ref": 0.2, "heldout_drop": 0.01},
        "runs/b/checkpoint-10": {"mmlu_drop": 0.05},
    }
    (folder / "c.json").write_text(json.dumps({"checkpoint": "runs/c", "heldout_drop": "high"}))
    with pytest.raises(
        FisherError, match=r"c\.json: field 'heldout_drop': expected a finite number"
    ):
        load_forgetting(folder)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", r"f\.json:1: invalid JSON"),
        ("[1, 2]", r"expected a non-empty JSON object"),
        ('{"x": true}', r"field 'x': expected a finite number"),
    ],
)
def test_bad_mapping_files(tmp_path: Path, text: str, message: str):
    (tmp_path / "f.json").write_text(text)
    with pytest.raises(UserError, match=message):
        load_forgetting(tmp_path / "f.json")


def test_forgetbench_eval_outputs_read_as_delta_l_ref(tmp_path: Path):
    """A folder of `forgetbench eval` outputs: the checkpoint is their `model`, the measure
    ΔL_ref (token mean) their `refloss.delta_l_ref`."""
    folder = tmp_path / "evals"
    folder.mkdir()
    (folder / "a.json").write_text(
        json.dumps(
            {"model": "runs/a/checkpoint-10", "refloss": {"l_ref": 1.5, "delta_l_ref": 0.04}}
        )
    )
    assert load_forgetting(folder) == {"runs/a/checkpoint-10": {"delta_l_ref": 0.04}}
    (folder / "b.json").write_text(json.dumps({"model": "m", "refloss": {"delta_l_ref": "x"}}))
    with pytest.raises(
        FisherError, match=r"b\.json: field 'refloss\.delta_l_ref': expected a finite"
    ):
        load_forgetting(folder)


def test_matching_by_path_and_suffix(tmp_path: Path):
    a, b = _ckpts(tmp_path)
    source = tmp_path / "f.json"
    source.touch()
    found, unmatched = match_forgetting(
        {str(a): {"x": 1.0}, "runs/b/checkpoint-10": {"x": 2.0}, "zzz": {"x": 3.0}}, [a, b], source
    )
    assert found == [{"x": 1.0}, {"x": 2.0}] and unmatched == ["zzz"]
    with pytest.raises(FisherError, match="ambiguous"):
        match_forgetting({"checkpoint-10": {"x": 1.0}}, [a, b], source)
    assert checkpoint_labels([a, b]) == ["a/checkpoint-10", "b/checkpoint-10"]
