"""Spectrum/health metrics and seed statistics against closed forms and slow loops."""

import math
from itertools import combinations

import numpy as np
import pytest
import torch

from sae_lab.metrics import spectrum as S
from sae_lab.metrics import statistics as T


def test_effective_rank_and_participation_ratio_closed_forms():
    # Centred data with singular values proportional to (2, 1, 1) along axes.
    x = torch.tensor([[2.0, 0, 0], [-2, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    # σ ∝ (2√2, √2, √2) -> σ̄ = (1/2, 1/4, 1/4)
    assert S.effective_rank(x) == pytest.approx(math.exp(-(0.5 * math.log(0.5) + 0.5 * math.log(0.25))))
    # λ ∝ (8, 2, 2): PR = 144 / 72 = 2; deflated: 16 / 8 = 2
    assert S.participation_ratio(x) == pytest.approx(2.0)
    assert S.participation_ratio(x, deflate=True) == pytest.approx(2.0)
    iso = torch.eye(4).repeat(2, 1) * torch.tensor([[1.0], [-1.0]]).repeat_interleave(4, 0)
    assert S.effective_rank(iso) == pytest.approx(4.0) and S.participation_ratio(iso) == pytest.approx(4.0)


def test_coherence_against_loops():
    d = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    per_atom, rms = S.coherence(d)
    dn = (d / d.norm(dim=1, keepdim=True)).tolist()
    dots = [[sum(a * b for a, b in zip(dn[i], dn[j], strict=True)) for j in range(6)] for i in range(6)]
    for i in range(6):
        assert per_atom[i].item() == pytest.approx(max(abs(dots[i][j]) for j in range(6) if j != i))
    off_diagonal = sum(dots[i][j] ** 2 for i in range(6) for j in range(6) if i != j)
    assert rms == pytest.approx(math.sqrt(off_diagonal / 36))
    chunked, chunked_rms = S.coherence(d, chunk_size=4)  # chunks that do not divide 6
    # to rounding: BLAS may take another kernel (FMA or not) for a 4-row product than for a 6-row one
    torch.testing.assert_close(chunked, per_atom, rtol=1e-14, atol=0.0)
    assert chunked_rms == pytest.approx(rms, rel=1e-12)


def test_usage_metrics():
    counts = torch.tensor([10, 10, 0, 0])
    assert S.usage_entropy(counts) == pytest.approx(math.log(2) / math.log(4))
    assert S.dead_fraction_by_rate(torch.tensor([0, 1, 50, 100]), n_tokens=100_000) == pytest.approx(0.5)
    # L0 = 2, two equally used indices: H = 1 bit -> 2 x (1 + 8) = 18
    assert S.rate_proxy_bits(2.0, counts) == pytest.approx(18.0)


def _slow_bootstrap(matrix, n_resamples, seed):
    rng = np.random.default_rng(seed)
    s = len(matrix)
    means = []
    draws = rng.integers(0, s, size=(n_resamples, s))
    for draw in draws:
        distinct = sorted(set(draw.tolist()))
        if len(distinct) < 2:
            continue
        means.append(np.mean([matrix[i][j] for i, j in combinations(distinct, 2)]))
    return np.quantile(means, [0.025, 0.975])


def test_bootstrap_matches_slow_loop():
    rng = np.random.default_rng(3)
    vals = {p: rng.normal(0.3, 0.01) for p in T.all_pairs(6)}
    m = T.pair_matrix(6, vals)
    est, low, high = T.bootstrap_seed_ci(m, n_resamples=2000, seed=7)
    ref_low, ref_high = _slow_bootstrap(m, 2000, 7)
    assert est == pytest.approx(np.mean(list(vals.values())))
    assert (low, high) == pytest.approx((ref_low, ref_high))
    est2, low2, high2 = T.bootstrap_seed_ci(m, n_resamples=2000, seed=7, offset=0.3)
    assert (est2, low2, high2) == pytest.approx((est - 0.3, low - 0.3, high - 0.3))
    assert len(T.pair_values(T.pair_matrix(20, {p: 1.0 for p in T.all_pairs(20)}))) == 190


def test_permutation_test_exact_small_case():
    # trained {1, 2}, random {3, 4}: of the 6 labelings, 2 reach |diff| = 2 -> exact p = 1/3
    p = T.permutation_test(np.array([1.0, 2.0]), np.array([3.0, 4.0]), n_permutations=20000, seed=0)
    assert p == pytest.approx(1 / 3, abs=0.01)
    p_far = T.permutation_test(np.full(20, 0.5) + np.arange(20) * 1e-3, np.full(20, 0.3), n_permutations=999)
    assert p_far == pytest.approx(1 / 1000)


def test_equivalence():
    assert T.equivalent_to_null(-0.004, 0.003)
    assert not T.equivalent_to_null(-0.004, 0.006)
