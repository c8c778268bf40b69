"""The self-consistency certificate and its warm-up weight against the formulas written out by hand
(docs/metrics.md, "Latent self-consistency")."""

from __future__ import annotations

import pytest
import torch

from sae_lab.metrics.consistency import self_consistency, warmup_weight


def test_self_consistency_by_hand():
    x_m = torch.tensor([[[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]]])   # [E=1, N=2, m=3]
    x_t = torch.tensor([[[1.5, 1.0, 2.0], [2.0, 1.0, 0.5]]])
    # all coordinates: token 1: 0.25 + 1 + 0 = 1.25; token 2: 4 + 4 + 0.25 = 8.25; mean 4.75
    assert self_consistency(x_m, x_t, support_only=False).tolist() == [4.75]
    # on supp(x_m) only: token 1: coords 0 and 2 -> 0.25; token 2: coord 1 -> 4; mean 2.125
    assert self_consistency(x_m, x_t, support_only=True).tolist() == [2.125]


def test_the_support_mask_passes_no_gradient_through_the_support():
    x_m = torch.tensor([[1.0, 0.0]], requires_grad=True)
    x_t = torch.tensor([[2.0, 5.0]], requires_grad=True)
    self_consistency(x_m, x_t, support_only=True).sum().backward()
    assert x_t.grad.tolist() == [[2.0, 0.0]]   # d/dx_t (x_t − x_m)² on the support only
    assert x_m.grad.tolist() == [[-2.0, 0.0]]


@pytest.mark.parametrize("step, want", [(0, 0.0), (99, 0.0), (100, 0.0), (150, 0.25), (199, 0.495), (200, 0.5),
                                        (10_000, 0.5)])
def test_warmup_weight_ramps_linearly_from_start_to_end(step, want):
    assert warmup_weight(step, weight=0.5, start=100, end=200) == pytest.approx(want)


def test_warmup_weight_without_a_ramp_is_a_step():
    assert [warmup_weight(s, 2.0, 10, 10) for s in (9, 10, 11)] == [0.0, 2.0, 2.0]
