"""Resampling revives features through each learner's own `reinit_features`, so thresholds and
optimizer state are reset too: revived JumpReLU and BatchTopK features fire at the next eval."""

import pytest
import torch

from sae_lab.sae import build_sae
from sae_lab.training.dead_features import candidate_pool, dead_features, resample_member
from sae_lab.training.evaluation import evaluate_members


def _resample(sae, x, optimizer=None):
    dead = dead_features(sae, x)
    indices, gen = candidate_pool(len(x), 256, "shared", 0, 0, 5)
    n = resample_member(sae, optimizer, 0, dead[0], x[indices], gen)
    return dead[0], n


@pytest.mark.parametrize("kill", ["some", "all"])
def test_jumprelu_revived_features_fire(kill):
    torch.manual_seed(0)
    x = torch.randn(2000, 16)
    sae = build_sae("jumprelu", 16, 64, [0])
    killed = torch.arange(64) if kill == "all" else torch.arange(0, 64, 4)
    with torch.no_grad():
        sae.log_threshold[0, killed] = 10.0  # θ = e^10: nothing reaches it
    dead, n = _resample(sae, x)
    assert n == int(dead.sum()) and dead[killed].all()
    counts = evaluate_members(sae, x).firing_counts[0]
    assert (counts[dead] > 0).all()
    assert (sae.threshold[0, dead] <= 0.1 + 1e-6).all()


def test_batchtopk_revived_features_clear_the_inference_threshold():
    torch.manual_seed(0)
    x = torch.randn(2000, 16)
    sae = build_sae("batchtopk", 16, 64, [0], k=4)
    with torch.no_grad():
        sae.b_enc[0] = -100.0    # every feature dead ...
        sae.threshold[0] = 3.0   # ... and a learned inference threshold above the default level
    dead, n = _resample(sae, x)
    assert n == 64
    counts = evaluate_members(sae, x).firing_counts[0]
    assert (counts > 0).all()


def test_reinit_zeroes_optimizer_moments_of_every_feature_parameter():
    torch.manual_seed(0)
    x = torch.randn(512, 16)
    sae = build_sae("jumprelu", 16, 32, [0, 1])
    opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
    sae.member_loss(x).loss.sum().backward()
    opt.step()
    idx = torch.tensor([3, 7])
    sae.reinit_features(1, idx, x[:2], torch.tensor(0.5), opt)
    for param in (sae.W_dec, sae.W_enc, sae.b_enc, sae.log_threshold):
        for key in ("exp_avg", "exp_avg_sq"):
            state = opt.state[param][key]
            assert (state[1, idx] == 0).all(), param.shape
            assert (state[0, idx] != 0).any() or key == "exp_avg_sq"  # member 0 untouched
    pre = sae.pre_activations(x[:2])[1, [0, 1], idx]
    assert torch.allclose(pre, torch.full((2,), 0.5), atol=1e-5)  # fires at `level` on its own input
