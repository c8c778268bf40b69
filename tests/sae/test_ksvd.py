"""DB-KSVD's pieces against slow references: matching pursuit with precomputed products against the textbook
loop with matrix-vector products, the power-iteration singular vector against a full SVD, and the learner's
protocol (codes, decoding, export, batch sizing)."""

import math

import pytest
import torch

from sae_lab.sae import build_sae
from sae_lab.sae.ksvd import KSVDSAE, duplicates, uniform_dictionary
from sae_lab.sae.ksvd_ops import MP_ITER_FACTOR, matching_pursuit, top_left_singular, update_dictionary


def naive_mp(dictionary: torch.Tensor, y: torch.Tensor, k: int) -> dict[int, float]:
    """Matching pursuit on one sample as written: r ← r − ⟨r, d_j⟩ d_j with j = arg max |Dᵀr| recomputed
    from the residual each time; stops before a (k+1)-th distinct atom or after MP_ITER_FACTOR·k picks."""
    r, code = y.clone(), {}
    for _ in range(MP_ITER_FACTOR * k):
        c = dictionary @ r
        j = int(c.abs().argmax())
        if j not in code and len(code) == k:
            break
        code[j] = code.get(j, 0.0) + float(c[j])
        r = r - c[j] * dictionary[j]
    return code


@pytest.mark.parametrize("case", range(6))
def test_matching_pursuit_matches_the_naive_loop(case):
    gen = torch.Generator().manual_seed(case)
    n_members, batch, m, d = 2, 40, [24, 64, 128][case % 3], [8, 16, 32][case // 2]
    k = [1, 3, 6][case % 3]
    dictionary = torch.randn(n_members, m, d, generator=gen, dtype=torch.float64)
    dictionary /= dictionary.norm(dim=-1, keepdim=True)
    y = torch.randn(batch, d, generator=gen, dtype=torch.float64)
    gram = dictionary @ dictionary.transpose(1, 2)
    values, indices = matching_pursuit(gram, torch.matmul(y, dictionary.transpose(1, 2)), k)
    for e in range(n_members):
        for b in range(batch):
            expected = naive_mp(dictionary[e], y[b], k)
            got = {int(i): float(v) for i, v in zip(indices[e, b], values[e, b], strict=True) if v != 0}
            assert set(got) == set(expected)  # the same support ...
            for j, value in expected.items():  # ... and the same coefficients
                assert got[j] == pytest.approx(value, rel=1e-9, abs=1e-9)


def test_matching_pursuit_is_exact_on_orthonormal_atoms():
    """Closed form: with orthonormal atoms MP picks the k largest |⟨y, d_j⟩| with exactly those coefficients."""
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    y = torch.randn(5, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    corr = y @ q
    values, indices = matching_pursuit((q.T @ q)[None], corr[None], 4)  # atoms: the columns of q
    top = corr.abs().topk(4, dim=-1).indices
    assert (indices[0].sort(-1).values == top.sort(-1).values).all()
    assert torch.allclose(values[0], corr.gather(-1, indices[0]))


@pytest.mark.parametrize("wide", [True, False])
def test_power_iteration_finds_the_svd_singular_vector(wide):
    """Top left singular vector of E (d × P) through the Gram form (P > d) or directly, against
    torch.linalg.svd, up to sign."""
    gen = torch.Generator().manual_seed(3)
    d, cols = 12, (40 if wide else 7)
    err = torch.randn(5, cols, d, generator=gen, dtype=torch.float64)  # rows: the columns of E
    # a planted direction keeps the top singular value apart from the next (power iteration's rate)
    err += 2 * torch.randn(5, cols, 1, generator=gen, dtype=torch.float64) * torch.randn(5, 1, d, generator=gen,
                                                                                          dtype=torch.float64)
    init = torch.randn(5, d, generator=gen, dtype=torch.float64)
    u = top_left_singular(err, init / init.norm(dim=-1, keepdim=True), iters=300)
    for j in range(5):
        ref = torch.linalg.svd(err[j].T).U[:, 0]
        assert min((u[j] - ref).norm(), (u[j] + ref).norm()) < 1e-6


def test_dictionary_update_is_ksvd_for_one_atom_per_batch():
    """With atom_batch=1 each atom is the top singular vector of its error matrix, computed sequentially,
    and the residual returned is Y − D X with the refitted coefficients."""
    gen = torch.Generator().manual_seed(4)
    m, d, batch, k = 10, 6, 50, 2
    dictionary = torch.nn.functional.normalize(torch.randn(m, d, generator=gen, dtype=torch.float64), dim=-1)
    y = torch.randn(batch, d, generator=gen, dtype=torch.float64)
    gram = dictionary @ dictionary.T
    values, indices = matching_pursuit(gram[None], (y @ dictionary.T)[None], k)
    updated = dictionary.clone()
    residual, unused = update_dictionary(updated, y, values[0], indices[0], torch.arange(m), 1, 500)
    # reference: sequential K-SVD with full SVDs
    ref, x = dictionary.clone(), torch.zeros(batch, m, dtype=torch.float64)
    x.scatter_add_(-1, indices[0], values[0])
    for j in range(m):
        omega = (x[:, j] != 0).nonzero()[:, 0]
        if len(omega) == 0:
            continue
        e = (y[omega] - x[omega] @ ref + x[omega, j:j + 1] * ref[j]).T  # d × |Ω|
        u, s, vh = torch.linalg.svd(e, full_matrices=False)
        sign = 1.0 if float(u[:, 0] @ ref[j]) >= 0 else -1.0
        ref[j], x[omega, j] = sign * u[:, 0], sign * s[0] * vh[0]
    assert torch.allclose(updated, ref, atol=1e-6)
    assert torch.allclose(residual, y - x @ ref, atol=1e-6)
    assert (unused == (x == 0).all(0)).all()


def test_init_is_uniform_normalised_and_seeded_by_the_member_seed_only():
    sae = build_sae("ksvd", 16, 32, [5, 6], k=3)
    assert torch.equal(sae.decoder()[0], uniform_dictionary(5, 32, 16))
    assert torch.equal(build_sae("ksvd", 16, 32, [6], k=3).decoder()[0], sae.decoder()[1])
    assert torch.allclose(sae.decoder().norm(dim=-1), torch.ones(2, 32))
    assert not any(p.requires_grad for p in sae.parameters()) and not sae.trains_by_gradient


def test_codes_protocol_and_certificate():
    sae = build_sae("ksvd", 16, 32, [1, 2], k=3)
    x = torch.randn(50, 16)
    z = sae.encode(x)
    assert z.shape == (2, 50, 32) and ((z != 0).sum(-1) <= 3).all()
    sparse = sae.sparse_forward(x)
    assert torch.allclose(sparse.x_hat, sae.reconstruct(x), atol=1e-5)
    assert torch.allclose(sparse.certificate, sae.certificate(z), atol=1e-5)


def test_fit_step_lowers_the_error_and_counts_iterations():
    gen = torch.Generator().manual_seed(0)
    atoms = torch.nn.functional.normalize(torch.randn(24, 16, generator=gen), dim=-1)
    codes = torch.zeros(2000, 24).scatter_(-1, torch.rand(2000, 24, generator=gen).topk(2).indices, 1.0)
    x = codes @ atoms
    sae = build_sae("ksvd", 16, 24, [3], k=2, atom_batch=8)
    errors = [float(sae.fit_step(x)[0]) for _ in range(6)]
    assert errors[-1] < errors[0] and int(sae.iterations[0]) == 6


def test_matryoshka_groups_share_k_and_cover_the_dictionary():
    sae = build_sae("ksvd", 16, 32, [1], k=5, group_sizes=[8, 8, 16])
    assert sae.k_shares() == [2, 2, 1]
    sae.fit_step(torch.randn(300, 16))
    with pytest.raises(ValueError, match="sae.group_sizes"):
        build_sae("ksvd", 16, 32, [1], k=2, group_sizes=[8, 8, 16])


def test_duplicates_are_the_later_of_each_close_pair():
    atoms = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [0, 1], [-1, 0.01], [1, 1]]), dim=-1)
    assert duplicates(atoms, 0.95).tolist() == [False, False, True, False]


@pytest.mark.parametrize(("n", "expected"), [(12769, 12769), (2**16 + 100, 32818), (100, 100)])
def test_data_batch_size_is_capped_and_even(n, expected):
    sae = build_sae("ksvd", 4, 8, [0], k=1)
    size = sae.data_batch_size(256, n)
    assert size == expected and math.ceil(n / size) * size - n < math.ceil(n / size)


def test_bad_options_are_one_sentence():
    for options, key in (({"tied": False}, "sae.tied"), ({"atom_batch": 0}, "sae.atom_batch"),
                         ({"duplicate_cos": 1.5}, "sae.duplicate_cos")):
        with pytest.raises(ValueError, match=key):
            KSVDSAE(4, 8, [0], k=1, **options)


def test_start_from_truth_sets_the_known_fraction_of_atoms():
    truth = torch.nn.functional.normalize(torch.randn(20, 16), dim=-1)
    sae = build_sae("ksvd", 16, 32, [0, 1], k=2, known_fraction=0.5)
    before = sae.decoder().clone()
    assert sae.start_from_truth(truth) == 10
    assert torch.allclose(sae.decoder()[:, :10], truth[:10].expand(2, 10, 16))
    assert torch.equal(sae.decoder()[:, 10:], before[:, 10:])
