"""The synthetic subject: the generator's contract, the subject protocol, and its ground truth."""

import pytest
import torch

from sae_lab.models.synthetic import HOOK, Synthetic, mixing_matrix


def test_data_is_determined_by_its_own_seed_and_exactly_k_sparse():
    a, b = Synthetic(d=16, n_latents=40, k=3, n_samples=300, n_eval=50), Synthetic(d=16, n_latents=40, k=3,
                                                                                   n_samples=300, n_eval=50)
    assert torch.equal(a.data.observations, b.data.observations)
    assert not torch.equal(a.data.observations, Synthetic(d=16, n_latents=40, k=3, n_samples=300, n_eval=50,
                                                          seed=1).data.observations)
    latents = a.latents(torch.arange(350))
    assert ((latents != 0).sum(-1) == 3).all()
    nonzero = latents[latents != 0]
    assert nonzero.min() >= 0.5 and nonzero.max() <= 1.0
    # noise-free: x_p = W_p x exactly
    assert torch.allclose(latents @ a.data.mixing.T, a.data.observations, atol=1e-5)


def test_rows_come_through_the_subject_protocol():
    s = Synthetic(d=8, n_latents=20, k=2, n_samples=100, n_eval=30)
    train, held_out = s.dataset(), s.eval_dataset()
    assert set(train[:, 0].tolist()).isdisjoint(held_out[:, 0].tolist()) and len(held_out) == 30
    assert torch.equal(s.activations(held_out[:5], s.hook_name(0)), s.data.observations[100:105])
    truth = s.ground_truth()
    assert truth.dictionary.shape == (20, 8) and truth.latents.shape == (30, 20)
    assert torch.allclose(truth.latents @ truth.dictionary, s.data.observations[100:], atol=1e-5)
    assert s.hook_name(0) == HOOK and s.n_layers == 1 and s.no_behaviour
    with pytest.raises(ValueError, match="layer=1"):
        s.hook_name(1)


def test_rho_makes_columns_coherent():
    gen = torch.Generator().manual_seed(0)
    mean_cos = []
    for rho in (0.0, 0.5, 0.9):
        w = mixing_matrix(64, 200, rho, gen.manual_seed(0))
        assert torch.allclose(w.norm(dim=0), torch.ones(200))
        cos = (w.T @ w).abs()
        mean_cos.append(float((cos.sum() - 200) / (200 * 199)))
    assert mean_cos[0] < 0.15 < mean_cos[1] < mean_cos[2]


@pytest.mark.parametrize(("options", "key"), [({"k": 30, "n_latents": 20}, "model.k"), ({"rho": 2.0}, "model.rho"),
                                              ({"d": 0}, "model.d"), ({"noise": -1.0}, "model.noise")])
def test_bad_settings_are_one_sentence(options, key):
    with pytest.raises(ValueError, match=key):
        Synthetic(**options)
