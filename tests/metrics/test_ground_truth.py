"""Ground-truth recovery metrics against brute force and closed forms."""

from itertools import permutations

import numpy as np
import pytest
import torch

from sae_lab.metrics.ground_truth import (
    aligned_latents,
    dictionary_recovery,
    latent_recovery_error,
    match_to_truth,
    spearman,
)
from sae_lab.models.protocol import GroundTruth
from sae_lab.sae import build_sae
from sae_lab.training.evaluation import ground_truth_columns


def unit_rows(n: int, d: int, seed: int) -> torch.Tensor:
    w = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return w / w.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize(("n", "m"), [(4, 6), (5, 5), (6, 4)])
def test_dictionary_recovery_matches_brute_force(n, m):
    truth, learned = unit_rows(n, 3, 0), unit_rows(m, 3, 1)
    cos = np.abs(truth.numpy() @ learned.numpy().T)
    # every one-to-one assignment of min(n, m) pairs; unmatched true atoms count 0
    if n <= m:
        best = max(sum(cos[i, p[i]] for i in range(n)) for p in permutations(range(m), n)) / n
    else:
        best = max(sum(cos[p[j], j] for j in range(m)) for p in permutations(range(n), m)) / n
    mmcs = 0.5 * (cos.max(1).mean() + cos.max(0).mean())
    out = dictionary_recovery(learned, truth)
    assert out["gt_hungarian_mean"] == pytest.approx(best, abs=1e-6)
    assert out["gt_mmcs"] == pytest.approx(mmcs, abs=1e-6)


def test_permuted_sign_flipped_truth_is_fully_recovered_with_its_latents():
    truth = unit_rows(6, 10, 2).float()
    perm, signs = torch.tensor([3, 0, 5, 1, 4, 2]), torch.tensor([1.0, -1, 1, -1, 1, 1])
    learned = torch.empty_like(truth)
    learned[perm] = truth * signs[:, None]  # learned atom perm[i] = ± true atom i
    matching = match_to_truth(learned, truth)
    assert matching.learned.tolist() == perm.tolist() and matching.sign.tolist() == signs.tolist()
    out = dictionary_recovery(learned, truth)
    assert out["gt_hungarian_mean"] == pytest.approx(1.0) and out["gt_recovered_0.99"] == 1.0
    latents = torch.rand(20, 6)
    codes = torch.empty_like(latents)
    codes[:, perm] = latents * signs  # what the learned atoms would code: the same signal
    aligned = aligned_latents(codes, matching)
    assert torch.allclose(aligned, latents) and latent_recovery_error(aligned, latents).abs().max() < 1e-6


def test_unmatched_true_latents_count_as_missed():
    truth = torch.eye(3)
    matching = match_to_truth(truth[:2], truth)  # two learned atoms, three true ones
    assert matching.learned.tolist() == [0, 1, -1]
    aligned = aligned_latents(torch.ones(1, 2), matching)
    assert aligned.tolist() == [[1.0, 1.0, 0.0]]
    assert latent_recovery_error(aligned, torch.ones(1, 3)).item() == pytest.approx(1.0)
    out = dictionary_recovery(truth[:2], truth)
    assert out["gt_hungarian_mean"] == pytest.approx(2 / 3) and out["gt_recovered_0.9"] == pytest.approx(2 / 3)


def test_spearman_is_the_closed_form_without_ties_and_nan_when_constant():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    d = np.argsort(np.argsort(a)) - np.argsort(np.argsort(b))
    n = len(a)
    assert spearman(a, b) == pytest.approx(1 - 6 * (d ** 2).sum() / (n * (n ** 2 - 1)))
    assert spearman(a, np.exp(a)) == pytest.approx(1.0)
    assert np.isnan(spearman(a, np.ones(50)))


def test_ground_truth_columns_of_an_oracle_dictionary():
    """Orthonormal truth, a learner whose dictionary is the truth permuted: matching pursuit recovers every
    latent exactly, so the latent error is 0 and every atom is recovered."""
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(3)))
    truth = q.T.contiguous()  # 16 orthonormal atoms as rows
    latents = torch.zeros(200, 16).scatter_(-1, torch.rand(200, 16).topk(3).indices, 0.5 + 0.5 * torch.rand(200, 3))
    x = latents @ truth
    sae = build_sae("ksvd", 16, 16, [0], k=3)
    perm = torch.randperm(16)
    with torch.no_grad():
        sae.W_dec[0] = truth[perm]
    cols = ground_truth_columns(sae, x, GroundTruth(truth, latents))
    assert cols["gt_hungarian_mean"].item() == pytest.approx(1.0, abs=1e-5)
    assert cols["gt_recovered_0.99"].item() == 1.0
    assert cols["gt_latent_error"].item() < 1e-4
    assert set(cols) == {"gt_mmcs", "gt_hungarian_mean", "gt_recovered_0.9", "gt_recovered_0.99",
                         "gt_latent_error", "gt_cert_spearman"}
