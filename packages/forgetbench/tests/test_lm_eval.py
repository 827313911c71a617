"""The task YAML files load in lm-eval, and a user can run them straight from the lm_eval CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import forgetbench


def test_every_registered_task_has_a_yaml():
    names = {p.stem for p in forgetbench.tasks_dir().glob("fb_*.yaml")}
    assert names == set(forgetbench.HELDOUT_TASKS)


def test_tasks_build_offline_without_a_model(data_folder):
    from lm_eval.tasks import TaskManager

    manager = TaskManager(
        include_path=str(forgetbench.tasks_dir()),
        include_defaults=False,
        metadata={"data_dir": str(data_folder)},
    )
    tasks = manager.load(["fb_gsm8k100", "fb_math500", "fb_aime24_paper"])["tasks"]
    assert len(tasks["fb_gsm8k100"].eval_docs) == 100
    doc = tasks["fb_math500"].eval_docs[0]
    assert doc["prompt"] == forgetbench.math_prompt("What is 1/2 + 0?")
    paper = tasks["fb_aime24_paper"].config
    assert paper.repeats == 16 and paper.generation_kwargs["temperature"] == 1.0
    assert paper.generation_kwargs["top_k"] == 0  # off, not the model's generation_config's


def test_prompts_are_the_authors_word_for_word():
    """The user turns of the authors' capability evaluation (FACTS §5 paraphrases them)."""
    assert forgetbench.math_prompt("Find x.") == (
        "Think step-by-step to solve the following problem. Output your answer inside of "
        "\\boxed{} tags.:\nFind x.\n\nLet's think step-by-step"
    )
    assert forgetbench.code_prompt("def f():\n") == (
        "Complete the following Python function. Return ONLY the complete function inside a "
        "```python code block, nothing else.\n\n```python\ndef f():\n\n```\n"
    )
    row = {"subject": "anatomy", "question": "Q?", "choices": ["a", "b", "c", "d"], "answer": "B"}
    assert forgetbench.mmlu_prompt(row, [row]) == (
        "The following are multiple choice questions (with answers) about anatomy. Put your "
        "final answer inside \\boxed{} as one of A, B, C, or D.\n\n"
        "Q?\nA. a\nB. b\nC. c\nD. d\nAnswer: \\boxed{B}\n\n"
        "Q?\nA. a\nB. b\nC. c\nD. d\nAnswer:"
    )


def test_process_results_match_the_scorers(monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("fb_utils", forgetbench.tasks_dir() / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    assert utils.process_math({"answer": "0.5"}, ["\\boxed{\\frac12}", "\\boxed{3}"]) == {
        "exact_match": 0.5
    }
    assert utils.process_mmlu({"answer": "B"}, ["\\boxed{b}"]) == {"acc": 1.0}
    # Through the every_sample filter, an item's samples arrive as one list: all are scored.
    samples = ["\\boxed{3}", "\\boxed{\\frac12}", "\\boxed{3}", "\\boxed{0.5}"]
    assert utils.every_sample([samples], None) == [samples]
    assert utils.process_math({"answer": "0.5"}, [samples]) == {"exact_match": 0.5}
    assert utils.process_mmlu({"answer": "B"}, [["\\boxed{B}", "\\boxed{C}"]]) == {"acc": 0.5}
    problem = forgetbench.load_benchmark("humaneval")[2]
    monkeypatch.delenv("HF_ALLOW_CODE_EVAL", raising=False)
    monkeypatch.delenv("FORGETBENCH_ALLOW_CODE_EXEC", raising=False)
    reply = f"```python\n{problem['prompt']}{problem['canonical_solution']}```"
    with pytest.raises(forgetbench.EvalError):
        utils.process_humaneval(problem, [reply])
    monkeypatch.setenv("FORGETBENCH_ALLOW_CODE_EXEC", "1")
    assert utils.process_humaneval(problem, [reply]) == {"pass@1": 1.0}


@pytest.mark.slow
def test_lm_eval_cli_runs_a_task(tiny_model_dir, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = tmp_path / "lm_eval_out"
    cmd = [
        sys.executable, "-m", "lm_eval", "--model", "hf",
        "--model_args", f"pretrained={tiny_model_dir},dtype=float32",
        "--include_path", str(forgetbench.tasks_dir()),
        "--tasks", "fb_gsm8k100", "--limit", "2", "--apply_chat_template",
        "--gen_kwargs", "max_gen_toks=8", "--device", "cpu",
        "--output_path", str(out), "--log_samples",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = next(out.rglob("results_*.json"))
    score = json.loads(results.read_text())["results"]["fb_gsm8k100"]["exact_match,none"]
    assert 0.0 <= score <= 1.0
