"""Sparse Hungarian against the exact one: equal when every edge is kept, within its stated bound otherwise."""

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from sae_lab.metrics import activation_hungarian, decoder_hungarian, firing_overlap_hungarian
from sae_lab.metrics.agreement import (
    abs_cosine,
    feature_correlations,
    firing_jaccard,
    live_matched_mean,
    random_dictionaries,
)
from sae_lab.metrics.sparse_matching import neighbour_graph, sparse_hungarian


def related(m: int, d: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A dictionary and a noisy, shuffled copy (like two seeds that mostly agree)."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(m, d, generator=gen)
    b = a[torch.randperm(m, generator=gen)] + noise * torch.randn(m, d, generator=gen) / d ** 0.5
    return a, b


def test_neighbour_graph_keeps_each_atoms_n_best_on_both_sides():
    a, b = related(60, 16, 2.0, seed=0)
    r, c, vals = neighbour_graph(a, b, n_neighbours=3, chunk_size=7)  # chunks that do not divide 60
    sim = abs_cosine(a, b).numpy()
    kept = set(zip(r.tolist(), c.tolist(), strict=True))
    assert len(kept) == len(r)  # each edge once
    for i in range(60):
        assert set((i, j) for j in np.argsort(-sim[i])[:3]) <= kept
        assert set((j, i) for j in np.argsort(-sim[:, i])[:3]) <= kept
    np.testing.assert_allclose(vals, sim[r, c], atol=1e-6)


def test_all_edges_kept_gives_the_exact_matching():
    a, b = random_dictionaries(2, 80, 12, seed=3)
    exact = decoder_hungarian(a, b)
    sparse = sparse_hungarian(a, b, n_neighbours=80)
    assert sparse["mean"] == pytest.approx(exact["mean"], abs=1e-6)
    assert sparse["stable_0.5"] == exact["stable_0.5"]


@pytest.mark.parametrize("noise, n", [(0.5, 4), (3.0, 4), (1e3, 8)])
def test_few_neighbours_stay_within_the_stated_bound(noise, n):
    a, b = related(400, 32, noise, seed=1)
    sim = abs_cosine(a, b).double().numpy()
    rows, cols = linear_sum_assignment(sim, maximize=True)
    exact = sim[rows, cols].mean()
    out = sparse_hungarian(a, b, n_neighbours=n)
    assert out["mean"] <= exact + 1e-6 <= out["upper_bound"] + 2e-6  # float32 cosines
    assert out["max_shortfall"] == pytest.approx(out["upper_bound"] - out["mean"])
    # the bound is the smaller MMCS half, worked out from the dense matrix
    assert out["upper_bound"] == pytest.approx(min(sim.max(1).mean(), sim.max(0).mean()), abs=1e-6)
    if noise < 1:  # seeds that agree: the sparse graph finds the exact matching
        assert out["mean"] == pytest.approx(exact, abs=1e-6)


def test_rectangular_matches_every_atom_of_the_smaller_dictionary():
    a, b = random_dictionaries(2, 90, 10, seed=5)
    sim = abs_cosine(a[:50], b).double().numpy()
    rows, cols = linear_sum_assignment(sim, maximize=True)
    out = sparse_hungarian(a[:50], b, n_neighbours=90)
    assert out["n_matched"] == 50 and out["mean"] == pytest.approx(sim[rows, cols].mean(), abs=1e-6)
    bound = min(np.sort(sim.max(0))[-50:].mean(), sim.max(1).mean())
    assert out["upper_bound"] == pytest.approx(bound, abs=1e-6)


def test_a_graph_without_full_matching_widens_until_it_has_one():
    # every atom of a is nearest to one of b's first 3, and a0 is the nearest of b's last 3: with n = 1,
    # a1 ... a5 have only b0, b1, b2 between them, so there is no full matching
    b = torch.eye(6)
    a = torch.eye(6)[[0, 1, 2, 0, 1, 2]]
    a[:, 3:] = 0.01
    a[0, 3:] = 0.1
    out = sparse_hungarian(a, b, n_neighbours=1)
    assert out["n_neighbours"] > 1 and out["n_matched"] == 6
    sim = abs_cosine(a, b).double().numpy()
    rows, cols = linear_sum_assignment(sim, maximize=True)
    assert out["mean"] == pytest.approx(sim[rows, cols].mean(), abs=1e-6)


@pytest.mark.parametrize("shape", [(30, 30), (20, 35), (35, 20)])
@pytest.mark.parametrize("dead_rows, dead_cols", [(0, 0), (12, 0), (0, 9), (12, 9), (19, 19)])
def test_live_matched_mean_equals_the_full_matching(shape, dead_rows, dead_cols):
    """Signed values (Pearson-like) with some all-zero rows and columns (dead features): the matching of the
    live part alone, padded with zero columns, has the full matching's mean."""
    rng = np.random.default_rng(sum(shape) * 100 + dead_rows * 10 + dead_cols)
    sim = rng.uniform(-0.5, 1.0, size=shape)
    dead_r, dead_c = rng.permutation(shape[0])[:dead_rows], rng.permutation(shape[1])[:dead_cols]
    sim[dead_r] = 0.0
    sim[:, dead_c] = 0.0
    rows, cols = linear_sum_assignment(sim, maximize=True)
    live = sim[np.setdiff1d(np.arange(shape[0]), dead_r)][:, np.setdiff1d(np.arange(shape[1]), dead_c)]
    assert live_matched_mean(live, *shape) == pytest.approx(sim[rows, cols].mean(), abs=1e-12)


def test_activation_and_firing_matchings_equal_the_full_matrices_with_dead_features():
    """On codes where most features never fire, the matchings computed on live features only equal the
    full matrices' matchings (which give dead features 0)."""
    gen = torch.Generator().manual_seed(0)
    z_s = torch.relu(torch.randn(300, 40, generator=gen)) * (torch.rand(40, generator=gen) < 0.3)
    z_t = torch.relu(torch.randn(300, 50, generator=gen)) * (torch.rand(50, generator=gen) < 0.4)
    for full, fast in ((feature_correlations, activation_hungarian), (firing_jaccard, firing_overlap_hungarian)):
        sim = full(z_s, z_t).numpy()
        rows, cols = linear_sum_assignment(sim, maximize=True)
        assert fast(z_s, z_t) == pytest.approx(sim[rows, cols].mean(), abs=1e-12)
    assert live_matched_mean(np.zeros((0, 0)), 4, 6) == 0.0
