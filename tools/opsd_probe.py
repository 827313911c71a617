"""OPSD: too little budget, or a defect? A first-order probe at the base model (issue 17).

For each record: the gradient of one loss at the base model, and the first-order change that a
unit parameter step along minus that gradient makes to A, the log-probability of the gold
answer's tokens inside the gold target after the naive prompt:

    d = grad A . (-g) / |g|

SFT's g is the gradient of the gold target's NLL. OPSD's is the trainer's loss
(``mixsd_train._losses.topk_forward_kl``: forward KL from the frozen base with the fact in
context, the rollouts' expert prompt, to the student, on the teacher's top 64) over ``n`` student
samples at T = 1. d > 0 on most records: the loss pushes the fact in and OPSD needs budget;
d <= 0 on most: a defect (teacher context, masking, KL direction). The teacher's own A says
whether the teacher knows the answer at all.

    uv run python tools/opsd_probe.py --data world/kgfact/train.jsonl --limit 16 --n 4
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from typing import Any

import torch

from mixsd_core import load_model, read_records, render_prompts, sample_rollout, stop_token_ids
from mixsd_train._losses import topk_forward_kl


def _answer_span(tokenizer: Any, target: list[int], answer: str) -> range:
    """Positions of the answer's tokens at their first place in the target."""
    for text in (" " + answer, answer):
        ids = tokenizer(text, add_special_tokens=False).input_ids
        for k in range(len(target) - len(ids) + 1):
            if target[k : k + len(ids)] == ids:
                return range(k, k + len(ids))
    raise ValueError(f"answer {answer!r} not found in its target's tokens")


def probe(model: Any, teacher: Any, tokenizer: Any, record: dict, n: int, seed: int) -> dict:
    params = [p for p in model.parameters() if p.requires_grad]

    def flat_grad(loss: torch.Tensor, retain: bool = False) -> torch.Tensor:
        grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=retain)
        return torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).reshape(-1)
                for g, p in zip(grads, params, strict=True)
            ]
        )

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False).input_ids

    def continuation_logp(m: Any, prefix: list[int], cont: list[int]) -> torch.Tensor:
        logits = m(input_ids=torch.tensor([prefix + cont])).logits[0, len(prefix) - 1 : -1]
        return logits.log_softmax(-1)

    naive, expert = render_prompts(tokenizer, record)
    naive_ids, expert_ids, target = ids(naive), ids(expert), ids(record["target"])
    span = _answer_span(tokenizer, target, str(record["answer"]))
    answer = torch.tensor(target[span.start : span.stop])
    logp = continuation_logp(model, naive_ids, target)
    student_a = logp[torch.tensor(list(span)), answer].sum()
    grad_a = flat_grad(student_a, retain=True)
    grad_sft = flat_grad(-logp[torch.arange(len(target)), torch.tensor(target)].mean())

    samples = sample_rollout(
        model,
        tokenizer,
        [naive],
        n=n,
        max_new_tokens=32,
        eos_token_ids=stop_token_ids(model, tokenizer),
        seed=seed,
        example_ids=[record["id"]],
        temperature=1.0,
    )[0]
    kl = torch.zeros(())
    for sample in (s for s in samples if s):
        student = model(input_ids=torch.tensor([naive_ids + sample])).logits
        with torch.no_grad():
            teach = teacher(input_ids=torch.tensor([expert_ids + sample])).logits
        mask = torch.ones(len(sample), dtype=torch.bool)
        kl = kl + topk_forward_kl(
            student[0, len(naive_ids) - 1 : -1], teach[0, len(expert_ids) - 1 : -1], mask, 64
        ) / len(sample)
    grad_opsd = flat_grad(kl / n)
    with torch.no_grad():
        teacher_logp = continuation_logp(teacher, expert_ids, target)
    teacher_a = teacher_logp[torch.tensor(list(span)), answer].sum()

    def step_gain(g: torch.Tensor) -> float:
        return float(-(grad_a @ g) / g.norm())

    return {
        "id": record["id"],
        "student_logp_answer": float(student_a),
        "teacher_logp_answer": float(teacher_a),
        "d_sft": step_gain(grad_sft),
        "d_opsd": step_gain(grad_opsd),
        "cos_sft": step_gain(grad_sft) / float(grad_a.norm()),
        "cos_opsd": step_gain(grad_opsd) / float(grad_a.norm()),
        "samples_stating_answer": sum(
            str(record["answer"]) in tokenizer.decode(s) for s in samples
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--data", required=True, help="records JSONL (KGFact train split)")
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--n", type=int, default=4, help="student samples per record")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    records = read_records(args.data)[: args.limit]
    model, tokenizer = load_model(args.model, dtype="float32", device="cpu")
    model.eval()  # no dropout: one deterministic gradient per loss
    teacher = copy.deepcopy(model).requires_grad_(False)
    start = time.monotonic()
    rows = []
    for record in records:
        rows.append(probe(model, teacher, tokenizer, record, args.n, args.seed))
        print(json.dumps(rows[-1]), flush=True)
    summary: dict[str, Any] = {
        key: statistics.mean(r[key] for r in rows) for key in rows[0] if key != "id"
    }
    summary.update(
        records=len(rows),
        opsd_positive=sum(r["d_opsd"] > 0 for r in rows),
        n=args.n,
        seconds=round(time.monotonic() - start, 1),
    )
    print("summary", json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
