"""MMCS, Hungarian, activation/firing matching and subspace overlap against slow references."""

import itertools

import numpy as np
import pytest
import torch

from sae_lab.metrics import agreement as A


def _dicts(seed=0, m=(9, 7), d=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m[0], d, generator=g), torch.randn(m[1], d, generator=g)


def _slow_mmcs(a, b):
    def cos(u, v):
        return abs(sum(x * y for x, y in zip(u, v, strict=True))) / (
            sum(x * x for x in u) ** 0.5 * sum(y * y for y in v) ** 0.5)
    a, b = a.tolist(), b.tolist()
    left = sum(max(cos(u, v) for v in b) for u in a) / len(a)
    right = sum(max(cos(u, v) for u in a) for v in b) / len(b)
    return (left + right) / 2


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunk", [1, 4, 2048])
def test_mmcs_matches_loops(seed, chunk):
    a, b = _dicts(seed)
    assert A.mmcs(a, b, chunk_size=chunk) == pytest.approx(_slow_mmcs(a, b), rel=1e-6)
    assert A.mmcs(a, b) == pytest.approx(A.mmcs(b, a), rel=1e-6)


def test_mmcs_closed_forms():
    eye = torch.eye(4)
    assert A.mmcs(eye, -eye[[2, 0, 3, 1]] * 3) == pytest.approx(1.0)  # permuted, sign-flipped, scaled
    # a = e1, b = (e1 + e2)/√2 and e3: max |cos| of a is 1/√2; of b rows 1/√2 and 0
    a = torch.tensor([[1.0, 0, 0]])
    b = torch.tensor([[1.0, 1, 0], [0, 0, 1]])
    assert A.mmcs(a, b) == pytest.approx(0.5 * (2**-0.5 + 2**-0.5 / 2))


def _brute_force_matching(sim):
    n = len(sim)
    best = max(itertools.permutations(range(n)), key=lambda p: sum(sim[i][p[i]] for i in range(n)))
    return sorted(sim[i][best[i]] for i in range(n))


def test_hungarian_matches_brute_force():
    a, b = _dicts(3, m=(6, 6))
    sim = A.abs_cosine(a, b).numpy()
    _, _, values = A.hungarian(sim)
    assert sorted(values) == pytest.approx(_brute_force_matching(sim.tolist()))
    summary = A.decoder_hungarian(a, b)
    ref = np.array(_brute_force_matching(sim.tolist()))
    assert summary["mean"] == pytest.approx(ref.mean()) and summary["median"] == pytest.approx(np.median(ref))
    for t in (0.5, 0.7, 0.9):
        assert summary[f"stable_{t:g}"] == pytest.approx((ref >= t).mean())


def test_hungarian_is_one_to_one_unlike_mmcs():
    # two copies of one atom in b: MMCS gives both a-atoms a perfect partner, Hungarian cannot
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert A.decoder_hungarian(a, b)["mean"] == pytest.approx(0.5)
    assert A.mmcs(a, b) == pytest.approx(0.75)


def test_live_only_drops_dead_atoms():
    a = torch.eye(3)
    b = torch.eye(3)[[1, 0, 2]]
    out = A.live_only_hungarian(a, b, torch.tensor([5, 0, 2]), torch.tensor([1, 1, 0]))
    assert (out["kept_a"], out["kept_b"]) == (2, 2)
    # live a = {e0, e2}, live b = {e1, e0}: e0-e0 matches (1), e2-e1 (0)
    assert out["mean"] == pytest.approx(0.5)


def test_activation_and_firing_matching_against_numpy():
    g = torch.Generator().manual_seed(0)
    z_s = torch.relu(torch.randn(50, 4, generator=g))
    z_t = z_s[:, [2, 0, 3, 1]] * 2.0
    z_t[:, 3] = 0.0  # a dead feature correlates 0 with everything
    corr = A.feature_correlations(z_s, z_t).numpy()
    ref = np.corrcoef(z_s.T.numpy(), z_t.T.numpy())[:4, 4:]
    ref[:, 3] = 0.0
    assert np.allclose(corr, np.nan_to_num(ref), atol=1e-10)
    assert A.activation_hungarian(z_s, z_t) == pytest.approx(3 / 4)
    jac = A.firing_jaccard(z_s, z_t).numpy()
    fs, ft = (z_s != 0).numpy(), (z_t != 0).numpy()
    for i, j in itertools.product(range(4), range(4)):
        union = (fs[:, i] | ft[:, j]).sum()
        assert jac[i, j] == pytest.approx((fs[:, i] & ft[:, j]).sum() / union if union else 0.0)
    assert A.firing_overlap_hungarian(z_s, z_t) == pytest.approx(3 / 4)
    null = A.permute_features_per_block(z_s, block=10, seed=1)
    assert torch.equal((null != 0).sum(1), (z_s != 0).sum(1))
    assert A.activation_hungarian(z_s, null) < A.activation_hungarian(z_s, z_s)


def test_subspace_overlap_closed_forms():
    d = torch.randn(20, 6, generator=torch.Generator().manual_seed(0))
    assert A.subspace_overlap(d, 2 * d[torch.randperm(20)], rank=3) == pytest.approx(1.0)  # same row space
    a = torch.diag(torch.tensor([3.0, 2.0, 1.0, 0.5]))
    b = torch.diag(torch.tensor([0.5, 1.0, 2.0, 3.0]))
    assert A.subspace_overlap(a, b, rank=2) == pytest.approx(0.0, abs=1e-12)
    assert A.subspace_overlap(a, a, rank=2) == pytest.approx(1.0)
    # random subspaces: about r/d
    vals = [A.subspace_overlap(*A.random_dictionaries(2, 64, 32, seed=s), rank=4) for s in range(20)]
    assert np.mean(vals) == pytest.approx(A.subspace_baseline(4, 32), rel=0.3)
