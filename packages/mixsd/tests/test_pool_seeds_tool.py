"""tools/pool_seeds.py pools issue 18's training frontier over run folders (one per seed): its
pooled differences average each prompt (item) over the seeds before pairing."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from forgetbench import delta_l_ref_se, l_ref
from mixsd_base import write_json

TOOL = Path(__file__).resolve().parents[3] / "tools" / "pool_seeds.py"


def _tool():
    spec = importlib.util.spec_from_file_location("pool_seeds", TOOL)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def _run(folder: Path, methods: dict[str, tuple[float, list, list[float]]]) -> Path:
    """A finished run folder: ``methods`` maps a label to (training accuracy, per-prompt
    [summed NLL, tokens], per-problem HumanEval scores); "gate" is the adaptive method."""
    evals, specs = {}, []
    for label, (accuracy, sums, solved) in methods.items():
        out = folder / "eval" / f"{label}.json"
        samples = [{"task": "fb_humaneval", "id": f"HumanEval/{i}", "pass@1": s}
                   for i, s in enumerate(solved)]  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
        refloss = {"delta_l_ref": sum(s for s, _ in sums) / sum(n for _, n in sums),
                   "nll_sums": sums}  # fmt: skip
        write_json(out, {"indomain": {"kgfact/train": {"score": accuracy}}, "refloss": refloss,
                         "heldout": {"fb_humaneval": {"score": sum(solved) / len(solved)}},
                         "samples_file": out.with_suffix(".samples.jsonl").name})  # fmt: skip
        evals[label] = str(out)
        options = {"mixing": "gate"} if label == "gate" else {}
        specs.append({"label": label, "method": "mixsd", "alpha": 0.5, "rollout_options": options})
    run = {"model": "m", "data": "d", "split": "kgfact/train", "evals": evals, "runs": {},
           "methods": specs, "nll": {}}  # fmt: skip
    write_json(folder / "run.json", run)
    return folder


def test_pooled_differences_average_each_prompt_and_item_over_the_seeds(tmp_path):
    gate = [[[1.0, 10], [2.0, 20]], [[1.2, 10], [1.6, 20]]]  # seed 0, seed 1
    fixed = [[[1.5, 10], [2.5, 20]], [[1.3, 10], [2.6, 20]]]
    solved = {"gate": [[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]], "a0.5": [[1.0, 0.0, 0.0]] * 2}
    runs = [
        _run(tmp_path / f"seed{k}", {"gate": (1.0, gate[k], solved["gate"][k]),
                                      "a0.5": (0.9, fixed[k], solved["a0.5"][k])})
        for k in range(2)
    ]  # fmt: skip
    table = _tool().pooled_tables(runs)

    mean = lambda a, b: [((x[0] + y[0]) / 2, x[1]) for x, y in zip(a, b, strict=True)]  # noqa: E731
    g, f = mean(*gate), mean(*fixed)
    diff, se = l_ref(g)[0] - l_ref(f)[0], delta_l_ref_se(g, f)
    assert diff == pytest.approx((1.1 + 1.8 - 1.4 - 2.55) / 30)
    row = next(x for x in table.splitlines() if x.startswith("| gate − a0.5 |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[2] == f"{diff:+.4f} ± {se:.4f} ({abs(diff) / se:.1f} SE)"
    # Held-out, per item over the seeds: gate (1, 0.5, 0.5) minus alpha 0.5 (1, 0, 0) = (0, .5, .5)
    assert cells[4].startswith("+33.3 ± 16.7")
    assert cells[3].split(" / ")[0].startswith("+33.3")  # seed 0 alone: (0, 1, 0)
    assert "| gate | 100.0 / 100.0 |" in table and "| a0.5 | 90.0 / 90.0 |" in table
