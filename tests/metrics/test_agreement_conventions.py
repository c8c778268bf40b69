"""Live-only MMCS, signed-cosine Hungarian (PW-MCC), shared-latent fraction and subspace overlap from
precomputed bases, against brute-force loops over atoms and permutations."""

import itertools
import math

import numpy as np
import pytest
import torch

from sae_lab.metrics import agreement as A


def _cos(u, v):
    return sum(x * y for x, y in zip(u, v, strict=True)) / (
        math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v)))


def _slow_live_mmcs(a, b, counts_a, counts_b):
    live_a = [u for u, c in zip(a.tolist(), counts_a.tolist(), strict=True) if c > 0]
    live_b = [v for v, c in zip(b.tolist(), counts_b.tolist(), strict=True) if c > 0]
    left = sum(max(abs(_cos(u, v)) for v in live_b) for u in live_a) / len(live_a)
    right = sum(max(abs(_cos(u, v)) for u in live_a) for v in live_b) / len(live_b)
    return (left + right) / 2


def _best_permutation(sim):
    """The permutation p maximising Σ_i sim[i][p[i]] by trying all of them (square, small)."""
    n = len(sim)
    return max(itertools.permutations(range(n)), key=lambda p: sum(sim[i][p[i]] for i in range(n)))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunk", [1, 3, 2048])
def test_live_only_mmcs_matches_loops(seed, chunk):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(9, 5, generator=g), torch.randn(7, 5, generator=g)
    counts_a = torch.tensor([3, 0, 1, 0, 0, 2, 5, 0, 1])
    counts_b = torch.tensor([0, 4, 4, 0, 1, 0, 2])
    got = A.live_only_mmcs(a, b, counts_a, counts_b, chunk_size=chunk)
    assert got == pytest.approx(_slow_live_mmcs(a, b, counts_a, counts_b), rel=1e-6)
    assert A.live_only_mmcs(a, b, torch.ones(9), torch.ones(7)) == pytest.approx(A.mmcs(a, b), rel=1e-7)


def test_live_only_mmcs_closed_form_and_no_live_atoms():
    # live a = {e0, e1}; live b = {e0, (e1 + e2)/√2}: a's best |cos| are 1 and 1/√2, b's 1 and 1/√2
    a = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
    b = torch.tensor([[1.0, 0, 0], [0, 1, 1], [0, 0, 1]])
    got = A.live_only_mmcs(a, b, torch.tensor([1, 1, 0]), torch.tensor([2, 2, 0]))
    assert got == pytest.approx(0.5 * (1 + 2**-0.5))
    assert math.isnan(A.live_only_mmcs(a, b, torch.zeros(3), torch.ones(3)))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_signed_hungarian_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    sim = [[_cos(u, v) for v in b.tolist()] for u in a.tolist()]
    best = _best_permutation(sim)
    ref = np.mean([sim[i][best[i]] for i in range(6)])
    assert A.signed_hungarian_mean(a, b) == pytest.approx(ref, rel=1e-6)


def test_signed_hungarian_counts_a_flipped_atom_as_opposite():
    eye = torch.eye(3)
    assert A.signed_hungarian_mean(eye, eye[[2, 0, 1]] * 4) == pytest.approx(1.0)
    assert A.signed_hungarian_mean(eye, -eye) == pytest.approx(0.0)  # any matching of -e_j sums to −1 or 0
    assert A.decoder_hungarian(eye, -eye)["mean"] == pytest.approx(1.0)  # |cos| ignores the sign


def _slow_shared(enc_a, dec_a, enc_b, dec_b, t):
    enc = [[_cos(u, v) for v in enc_b.tolist()] for u in enc_a.tolist()]
    best = _best_permutation(enc)
    shared = [enc[i][best[i]] > t and _cos(dec_a[i].tolist(), dec_b[best[i]].tolist()) > t
              for i in range(len(enc))]
    return sum(shared) / len(shared)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shared_latent_fraction_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    enc_a, dec_a = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    perm = torch.randperm(6, generator=g)
    # b: a's latents permuted, noisy enough that some fail the 0.7 test on one side only
    enc_b = enc_a[perm] + 0.6 * torch.randn(6, 4, generator=g)
    dec_b = dec_a[perm] + 0.6 * torch.randn(6, 4, generator=g)
    got = A.shared_latent_fraction(enc_a, dec_a, enc_b, dec_b)
    assert got == pytest.approx(_slow_shared(enc_a, dec_a, enc_b, dec_b, 0.7))
    for t in (0.3, 0.9):
        assert A.shared_latent_fraction(enc_a, dec_a, enc_b, dec_b, t) == pytest.approx(
            _slow_shared(enc_a, dec_a, enc_b, dec_b, t))


def test_shared_latent_fraction_closed_form():
    eye = torch.eye(4)
    perm = [1, 0, 3, 2]
    dec_b = eye[perm].clone()
    dec_b[0] = -dec_b[0]  # latent 0 of b (partner of a's latent 1) writes the opposite direction
    dec_b[2] = torch.tensor([1.0, 0, 0, 1]) / 2**0.5  # partner of a's latent 3: decoder cos 1/√2 > 0.7
    dec_b[3] = torch.tensor([0.0, 1, 1, 0]) / 2**0.5  # partner of a's latent 2: decoder cos 1/√2 > 0.7
    assert A.shared_latent_fraction(eye, eye, eye[perm], dec_b) == pytest.approx(3 / 4)
    assert A.shared_latent_fraction(eye, eye, eye[perm], dec_b, threshold=0.75) == pytest.approx(1 / 4)


def test_basis_overlap_equals_subspace_overlap_at_every_rank():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(30, 12, generator=g), torch.randn(25, 12, generator=g)
    ua, ub = A.top_right_singular_vectors(a, 8), A.top_right_singular_vectors(b, 8)
    for r in (1, 2, 4, 8):
        assert A.basis_overlap(ua[:, :r], ub[:, :r]) == pytest.approx(A.subspace_overlap(a, b, r), rel=1e-12)
    # brute force: Σ_ij (u_i · v_j)² / r over the basis columns
    r = 4
    slow = sum(float(ua[:, i] @ ub[:, j]) ** 2 for i in range(r) for j in range(r)) / r
    assert A.basis_overlap(ua[:, :r], ub[:, :r]) == pytest.approx(slow, rel=1e-12)
