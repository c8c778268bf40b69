"""TopK SAE on the member axis: seeding, unit-norm decoder, exact k, member independence."""

import pytest
import torch

from sae_lab.sae import TopKSAE, build_sae, init_decoder
from sae_lab.sae.module import SAEModule


def _step(sae, opt, x):
    loss = sae.member_loss(x)[0].sum()
    opt.zero_grad()
    loss.backward()
    sae.remove_parallel_grad()
    opt.step()
    sae.normalize_decoder()


def test_member_starts_identical_to_solo_run():
    ens = TopKSAE(16, 64, [3, 4, 5], k=4)
    for member, seed in enumerate([3, 4, 5]):
        solo = TopKSAE(16, 64, [seed], k=4)
        for name, p in solo.named_parameters():
            assert torch.equal(getattr(ens, name)[member], p[0]), name
    assert torch.equal(ens.W_dec[0], init_decoder(3, 64, 16))
    assert not torch.equal(ens.W_dec[0], ens.W_dec[1])


def test_exactly_k_active_and_sparse_decode_matches_dense():
    sae = TopKSAE(16, 64, [0, 1], k=5)
    with torch.no_grad():
        sae.b_enc += 1.0  # all selected pre-activations positive
    x = torch.randn(32, 16)
    z, x_hat = sae(x)
    assert z.shape == (2, 32, 64) and ((z != 0).sum(-1) == 5).all()
    assert torch.allclose(x_hat, sae.decode(z), atol=1e-5)
    assert torch.allclose(sae.encode(x), z)
    assert torch.allclose(sae.reconstruct(x), x_hat, atol=1e-5)


def test_decoder_rows_stay_unit_norm():
    sae = TopKSAE(16, 64, [0], k=4)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    for _ in range(20):
        _step(sae, opt, torch.randn(32, 16))
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(1, 64), atol=1e-5)


def test_ensemble_trains_like_independent_solo_runs():
    x = [torch.randn(32, 16, generator=torch.Generator().manual_seed(i)) for i in range(15)]
    ens = TopKSAE(16, 64, [7, 8], k=4)
    solos = [TopKSAE(16, 64, [s], k=4) for s in (7, 8)]
    opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in [ens, *solos]]
    for batch in x:
        for m, o in zip([ens, *solos], opts, strict=True):
            _step(m, o, batch)
    for member, solo in enumerate(solos):
        assert torch.allclose(ens.W_dec[member], solo.W_dec[0], atol=1e-5)
        assert torch.allclose(ens.W_enc[member], solo.W_enc[0], atol=1e-5)


def test_member_loss_is_each_members_mse():
    sae = TopKSAE(8, 32, [0, 1], k=3)
    x = torch.randn(10, 8)
    _, x_hat = sae(x)
    expected = torch.stack([((x_hat[e] - x) ** 2).mean() for e in range(2)])
    assert torch.allclose(sae.member_loss(x)[0], expected, atol=1e-6)


def test_bad_sizes_and_architecture():
    with pytest.raises(ValueError, match="k=65 must be between 1 and d_sae=64"):
        TopKSAE(16, 64, [0], k=65)
    with pytest.raises(ValueError, match="d_sae=0 must be at least 1"):
        build_sae("topk", 16, 0, [0], k=1)
    with pytest.raises(ValueError, match="sae.architecture='foo' is not known"):
        build_sae("foo", 16, 64, [0], k=1)


def test_lightning_module_uses_adam_with_lr():
    module = SAEModule(TopKSAE(8, 16, [0], k=2), lr=3e-4)
    opt = module.configure_optimizers()
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == 3e-4


def test_auxk_trains_dead_latents_on_the_residual():
    sae = TopKSAE(8, 32, [0, 1], k=2, aux_k=4, dead_steps=0)
    x = torch.randn(4, 8)  # 4 tokens x k=2: at most 8 of 32 latents fire, the rest are dead
    loss, _ = sae.member_loss(x)
    plain = sae.mse(x, sae.reconstruct(x))
    assert (loss - plain > 1e-3).all()  # the AuxK term is on and positive
    fired = torch.zeros(2, 32, dtype=torch.bool)
    for m in range(2):
        fired[m, sae.encode(x)[m].nonzero()[:, 1]] = True
    assert ((sae.steps_since_fired == 0) == fired).all()
    sae.zero_grad()
    loss.sum().backward()
    dead_rows = sae.W_dec.grad[0][~fired[0]].norm(dim=-1)
    assert (dead_rows > 0).any()  # only AuxK gives never-firing latents a gradient
    with pytest.raises(ValueError, match="sae.aux_k=64 must be between 1 and d_sae=32"):
        TopKSAE(8, 32, [0], k=2, aux_k=64)


def test_sparse_forward_matches_dense_eval_path():
    sae = TopKSAE(16, 64, [0, 1], k=5)
    x = torch.randn(40, 16)
    values, indices, x_hat, cert = sae.sparse_forward(x)
    z, x_hat_dense = sae(x)
    assert torch.allclose(x_hat, x_hat_dense, atol=1e-5)
    assert torch.equal(torch.zeros_like(z).scatter(-1, indices, values), z)
    assert torch.allclose(cert, sae.certificate(z, x_hat_dense), rtol=1e-4)


def _check_loss_and_grads_against(sae, x, reference_loss):
    """sae.member_loss(x) and its gradients against `reference_loss(sae, x)`, a hand-written [E] loss; the SAE
    gets random biases first so that every term is exercised."""
    torch.manual_seed(0)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.1)
        sae.b_dec.normal_(0, 0.1)
    loss = sae.member_loss(x).loss
    loss.sum().backward()
    grads = {name: p.grad.clone() for name, p in sae.named_parameters()}
    sae.zero_grad()
    reference = reference_loss(sae, x)
    reference.sum().backward()
    torch.testing.assert_close(loss, reference, rtol=1e-5, atol=1e-6)
    for name, p in sae.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-6, msg=f"gradient of {name}")
        assert p.grad.abs().sum() > 0, name


def test_sparse_training_path_matches_a_dense_reference_in_loss_and_gradients():
    """member_loss decodes with embedding_bag from the k (value, index) pairs; the same loss written densely
    (z scattered to [E, B, d_sae], then z @ W_dec) gives the same loss and the same gradient for every
    parameter, within float tolerance."""
    def dense(sae, x):
        values, indices = sae.select(sae.pre_activations(x))
        z = torch.zeros(values.shape[:-1] + (96,)).scatter(-1, indices, values)
        x_hat = torch.bmm(z, sae.W_dec) + sae.b_dec[:, None, :]
        return (x_hat - x).pow(2).mean(dim=(-2, -1))

    x = torch.randn(50, 24, generator=torch.Generator().manual_seed(0))
    _check_loss_and_grads_against(TopKSAE(24, 96, [0, 1, 2], k=7), x, dense)


@pytest.mark.parametrize("aux_k", [3, 12])  # 3 of 32 latents: the embedding_bag decode; 12: the dense one
def test_auxk_loss_and_gradients_match_a_hand_written_reference(aux_k):
    """The AuxK loss written out by hand (dead = not fired this step with dead_steps 0; the aux_k largest
    dead pre-activations, ReLU'd, decode the detached residual without b_dec) gives the same loss and
    gradients on both decode paths."""
    def by_hand(sae, x):
        pre = (x - sae.b_dec[:, None, :]) @ sae.W_enc.transpose(1, 2) + sae.b_enc[:, None, :]
        values, indices = pre.topk(2, dim=-1)
        z = torch.zeros_like(pre).scatter(-1, indices, values.relu())
        x_hat = z @ sae.W_dec + sae.b_dec[:, None, :]
        fired = (z > 0).any(dim=1)  # [E, d_sae]
        aux_values, aux_indices = pre.masked_fill(fired[:, None, :], float("-inf")).topk(aux_k, dim=-1)
        aux_z = torch.zeros_like(pre).scatter(-1, aux_indices, aux_values.relu())
        aux = ((aux_z @ sae.W_dec - (x - x_hat).detach()) ** 2).mean(dim=(-2, -1))
        return ((x_hat - x) ** 2).mean(dim=(-2, -1)) + aux / 32

    _check_loss_and_grads_against(TopKSAE(8, 32, [0, 1], k=2, aux_k=aux_k, dead_steps=0),
                                  torch.randn(6, 8, generator=torch.Generator().manual_seed(0)), by_hand)


@pytest.mark.parametrize("architecture", ["topk", "ksvd"])
@pytest.mark.parametrize("members", [[0], [0, 1, 2]])
def test_dense_codes_of_sparse_forward_reconstruct_bit_for_bit(architecture, members):
    """Patched CE decodes the eval codes instead of encoding again: that must be reconstruct(x) exactly."""
    sae = build_sae(architecture, 16, 64, members, k=5)
    x = torch.randn(300, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        sparse = sae.sparse_forward(x)
        z = sae.dense_codes(sparse.values, sparse.indices)
        assert torch.equal(z, sae.encode(x))
        assert torch.equal(sae.decode(z), sae.reconstruct(x))
    assert build_sae("relu", 16, 64, members).dense_codes(sparse.values, sparse.indices) is None
