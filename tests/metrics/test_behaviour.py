"""Behaviour metrics against hand-computed values on 2 x 3 x 4 log-probability tensors."""

import math

import pytest
import torch

from sae_lab.metrics.behaviour import ce_loss_score, ce_per_sequence, ce_rec, delta_ce, k_star, kl_per_sequence

LN2 = math.log(2)
P0 = [0.5, 0.25, 0.125, 0.125]
U = [0.25, 0.25, 0.25, 0.25]
P2 = [0.125, 0.125, 0.25, 0.5]


def logp(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64).log()


@pytest.fixture
def ref():
    # [S=2, P'=3, V=4]
    return logp([[P0, U, P2], [P0, P0, P0]])


def test_ce_per_sequence_by_hand(ref):
    targets = torch.tensor([[0, 3, 1], [0, 0, 1]])
    # seq 0: -ln .5, -ln .25, -ln .125 = 1, 2, 3 ln2 -> mean 2 ln2; seq 1: 1, 1, 2 ln2 -> mean 4/3 ln2
    expected = torch.tensor([2 * LN2, 4 / 3 * LN2], dtype=torch.float64)
    assert torch.allclose(ce_per_sequence(ref, targets), expected, atol=1e-12)


def test_ce_per_sequence_matches_slow_reference():
    g = torch.Generator().manual_seed(0)
    lp = torch.randn(2, 3, 4, generator=g).log_softmax(-1)
    targets = torch.randint(0, 4, (2, 3), generator=g)
    slow = torch.tensor([sum(-lp[s, p, targets[s, p]].item() for p in range(3)) / 3 for s in range(2)])
    assert torch.allclose(ce_per_sequence(lp, targets), slow, atol=1e-6)
    # equal to torch's cross_entropy on the logits the log-probabilities came from
    ce = torch.nn.functional.cross_entropy(lp.reshape(-1, 4), targets.reshape(-1), reduction="none").view(2, 3)
    assert torch.allclose(ce_per_sequence(lp, targets), ce.mean(-1), atol=1e-6)


def test_kl_per_sequence_by_hand(ref):
    patched = logp([[U, U, U], [U, P2, P0]])
    # KL(P0 || U) = ln4 - H(P0) = 2 ln2 - 1.75 ln2 = 0.25 ln2; KL(U || U) = 0; KL(P2 || U) = 0.25 ln2
    # KL(P0 || P2) = .5(-1+3) + .25(-2+3) + .125(-3+2) + .125(-3+1) = 0.875 ln2; KL(P0 || P0) = 0
    expected = torch.tensor([(0.25 + 0 + 0.25) / 3 * LN2, (0.25 + 0.875 + 0) / 3 * LN2], dtype=torch.float64)
    assert torch.allclose(kl_per_sequence(ref, patched), expected, atol=1e-12)


def test_kl_of_identical_distributions_is_zero_and_matches_torch(ref):
    assert torch.equal(kl_per_sequence(ref, ref), torch.zeros(2, dtype=torch.float64))
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 3, 4, generator=g).log_softmax(-1), torch.randn(2, 3, 4, generator=g).log_softmax(-1)
    slow = torch.nn.functional.kl_div(b, a, log_target=True, reduction="none").sum(-1).mean(-1)
    assert torch.allclose(kl_per_sequence(a, b), slow, atol=1e-6)
    assert (kl_per_sequence(a, b) > 0).all()


def test_kl_zero_probability_terms_contribute_nothing():
    ref = torch.tensor([[[1.0, 0.0, 0.0, 0.0]]]).log()  # -inf where p_ref = 0
    patched = torch.tensor([[[0.5, 0.5, 0.0, 0.0]]]).log()  # -inf - -inf would be NaN without the convention
    assert kl_per_sequence(ref, patched).item() == pytest.approx(LN2, abs=1e-6)


def test_ce_loss_score_and_delta_ce():
    assert ce_loss_score(2.0, 2.0, 5.0) == 1.0  # recon == orig
    assert ce_loss_score(2.0, 5.0, 5.0) == 0.0  # recon == zero
    assert ce_loss_score(2.0, 2.6, 5.0) == pytest.approx(0.8)  # (5 - 2.6) / (5 - 2)
    assert math.isnan(ce_loss_score(2.0, 2.5, 2.0))
    t = ce_loss_score(torch.tensor([2.0, 1.0]), torch.tensor([2.6, 1.0]), torch.tensor([5.0, 3.0]))
    assert torch.allclose(t, torch.tensor([0.8, 1.0], dtype=torch.float64))
    assert delta_ce(2.0, 2.6) == pytest.approx(0.6)
    assert torch.allclose(delta_ce(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 2.0])), torch.tensor([0.5, 0.0]))
    # docs/metrics.md: CE_rec = 2 - L_recon / L_orig; 1 when preserved, 0 when the loss doubles
    assert ce_rec(2.0, 2.0) == pytest.approx(1.0)
    assert ce_rec(2.0, 4.0) == pytest.approx(0.0)
    assert ce_rec(2.0, 5.0) == pytest.approx(-0.5)


def test_shape_errors(ref):
    with pytest.raises(ValueError, match="targets must be"):
        ce_per_sequence(ref, torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="logprobs must be"):
        ce_per_sequence(ref[0], torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="shapes differ"):
        kl_per_sequence(ref, ref[:, :2])


def test_k_star_interpolates_on_the_k_grid():
    ks, ce = [8, 16, 32, 64], [0.5, 0.7, 0.8, 0.95]
    assert k_star(ks, ce, 0.85) == pytest.approx(32 + (0.85 - 0.8) * 32 / 0.15)  # between 32 and 64
    assert k_star(ks, ce, 0.7) == pytest.approx(16.0)
    assert k_star(ks, ce, 0.4) == 8.0
    assert k_star(ks, ce, 0.99) is None
    assert k_star([64, 8], [0.95, 0.5], 0.725) == pytest.approx(8 + 0.225 * 56 / 0.45)  # order-free
