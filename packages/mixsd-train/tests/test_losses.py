"""Loss math: top-k forward KL against the exact KL and hand-computed cases; the NLL losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mixsd_train import masked_nll, teacher_top1_nll, topk_forward_kl


def exact_kl(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    p_log, q_log = teacher.log_softmax(-1), student.log_softmax(-1)
    return (p_log.exp() * (p_log - q_log)).sum(-1)[mask].sum()


@pytest.mark.parametrize("renorm", [True, False])
def test_topk_kl_equals_exact_kl_at_full_vocab(renorm: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(3, 5, 17, generator=gen) * 3
    teacher = torch.randn(3, 5, 17, generator=gen) * 3
    mask = torch.rand(3, 5, generator=gen) > 0.3
    got = topk_forward_kl(student, teacher, mask, k=17, renorm_student=renorm)
    torch.testing.assert_close(got, exact_kl(student, teacher, mask), rtol=1e-5, atol=1e-6)
    # k above the vocabulary size is clamped to it
    torch.testing.assert_close(topk_forward_kl(student, teacher, mask, k=1000), got)


def test_topk_kl_hand_computed() -> None:
    # teacher probs (0.5, 0.3, 0.2) -> top-2 renormalised (5/8, 3/8)
    teacher = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    student = torch.log(torch.tensor([[0.25, 0.25, 0.5]]))
    mask = torch.tensor([True])
    p = (5 / 8, 3 / 8)
    # renormalised student over {0, 1}: (1/2, 1/2)
    want = p[0] * math.log(p[0] / 0.5) + p[1] * math.log(p[1] / 0.5)
    got = topk_forward_kl(student, teacher, mask, k=2)
    assert got.item() == pytest.approx(want, rel=1e-5)
    # full-vocabulary student log-probs at {0, 1}: (1/4, 1/4)
    want_full = p[0] * math.log(p[0] / 0.25) + p[1] * math.log(p[1] / 0.25)
    got_full = topk_forward_kl(student, teacher, mask, k=2, renorm_student=False)
    assert got_full.item() == pytest.approx(want_full, rel=1e-5)


def test_topk_kl_zero_when_student_is_teacher() -> None:
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(1))
    mask = torch.ones(4, dtype=torch.bool)
    assert topk_forward_kl(logits, logits, mask, k=8).item() == pytest.approx(0.0, abs=1e-6)
    # without renormalising the student: -log(teacher mass on its top-k) per position
    mass = logits.softmax(-1).topk(8, -1).values.sum(-1)
    got = topk_forward_kl(logits, logits, mask, k=8, renorm_student=False)
    assert got.item() == pytest.approx(-mass.log().sum().item(), rel=1e-5)


def test_topk_kl_masked_positions_do_not_count() -> None:
    gen = torch.Generator().manual_seed(2)
    student, teacher = torch.randn(2, 3, 9, generator=gen), torch.randn(2, 3, 9, generator=gen)
    mask = torch.tensor([[True, False, False], [False, False, True]])
    whole = topk_forward_kl(student, teacher, torch.ones_like(mask), k=4)
    part = topk_forward_kl(student, teacher, mask, k=4)
    assert 0 < part.item() < whole.item()
    with pytest.raises(ValueError, match="k must be >= 1"):
        topk_forward_kl(student, teacher, mask, k=0)


def test_topk_kl_gradient_reaches_student_only_through_topk_when_renormalised() -> None:
    teacher = torch.tensor([[4.0, 3.0, -5.0, -6.0]])
    student = torch.zeros(1, 4, requires_grad=True)
    topk_forward_kl(student, teacher, torch.tensor([True]), k=2).backward()
    assert student.grad is not None
    assert student.grad[0, 2:].abs().sum().item() == 0.0
    assert student.grad[0, :2].abs().sum().item() > 0.0


def test_nll_losses() -> None:
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 11, generator=gen)
    targets = torch.randint(0, 11, (2, 4), generator=gen)
    mask = torch.tensor([[False, True, True, True], [True, True, False, False]])
    want = F.cross_entropy(logits[mask], targets[mask], reduction="sum")
    torch.testing.assert_close(masked_nll(logits, targets, mask), want)
    teacher = torch.randn(2, 4, 11, generator=gen)
    want_top1 = F.cross_entropy(logits[mask], teacher.argmax(-1)[mask], reduction="sum")
    torch.testing.assert_close(teacher_top1_nll(logits, teacher, mask), want_top1)
