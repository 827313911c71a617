"""The training losses as pure tensor functions (no model, no Trainer): easy to test by hand.

All of them take logits already aligned with their targets, shape ``[..., V]``, and a boolean
``mask`` of shape ``[...]`` that selects the positions that count, and return the **sum** over
those positions (the trainers divide by the token count of the whole accumulated batch).

Top-k forward KL (MixSD-KL, OPSD). At each position let S be the teacher's k most likely tokens,
``p_S = softmax(teacher_logits[S])`` the teacher renormalised over S, and

* ``renorm_student=True`` (default): ``q_S = softmax(student_logits[S])``, the student
  renormalised over the same set. The loss ``KL(p_S || q_S)`` is a true KL between two
  distributions on S: zero iff the student matches the teacher on S, so OPSD starts at exactly
  zero when student = teacher and both see the same prompt, for every k. Upstream NeMo-RL's
  ``DistillationLossFn`` with ``zero_outside_topk: false`` (the authors' OPSD config) gathers the
  student's logits at S and renormalises them over S this way;
* ``renorm_student=False``: ``q = log_softmax(student_logits)[S]``, the student's full-vocabulary
  log-probs at S. Then ``sum_S p_S (log p_S - log q)`` also penalises student mass outside S, but
  it is ``-log(teacher mass on S) > 0`` even when student = teacher (NeMo-RL's
  ``zero_outside_topk: true`` with forward KL gathers full-vocabulary log-probs this way).

With k = V both are the exact full-vocabulary ``KL(p || q)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["masked_nll", "teacher_top1_nll", "topk_forward_kl"]


def _select(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The ``[N, V]`` rows of ``logits`` where ``mask`` is true, in fp32 (softmax needs the range)."""
    return logits[mask].float()


def masked_nll(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over masked positions of ``-log softmax(logits)[target]``."""
    return F.cross_entropy(_select(logits, mask), targets[mask], reduction="sum")


def teacher_top1_nll(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """OPSD-NLL: NLL of the teacher's argmax token under the student, summed over ``mask``."""
    targets = teacher_logits.argmax(-1)
    return masked_nll(student_logits, targets, mask)


def topk_forward_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor,
    k: int,
    *,
    renorm_student: bool = True,
) -> torch.Tensor:
    """Sum over masked positions of the forward KL(teacher || student) on the teacher's top-k."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    student, teacher = _select(student_logits, mask), _select(teacher_logits, mask)
    k = min(k, teacher.shape[-1])
    top_logits, top_ids = teacher.topk(k, dim=-1)
    teacher_logp = top_logits.log_softmax(-1)
    if renorm_student:
        student_logp = student.gather(-1, top_ids).log_softmax(-1)
    else:
        student_logp = student.log_softmax(-1).gather(-1, top_ids)
    return (teacher_logp.exp() * (teacher_logp - student_logp)).sum()
