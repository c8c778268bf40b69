"""Each architecture trains on mod113 for the smoke budget and shows its defining property."""

import pytest
import torch
from safetensors.torch import load_file

from sae_lab.data import subject_activations
from sae_lab.metrics import mse_mean
from sae_lab.models import build_subject
from sae_lab.sae.export import load_member
from tests.helpers.runs import train_smoke


@pytest.fixture(scope="module")
def acts(cache_dir):
    subject = build_subject("mod113")
    return subject_activations(subject, subject.hook_name(1), cache_dir)


@torch.no_grad()
def test_topk_has_exactly_k_active(tmp_path, cache_dir, acts):
    run, last = train_smoke(tmp_path, cache_dir, "topk", "sae=topk", "k=16")
    z = load_member(run.root, 0).encode(acts[:2000])
    assert ((z != 0).sum(-1) == 16).all()
    assert last[0]["l0"] == 16


@torch.no_grad()
def test_batchtopk_averages_k_with_varying_counts(tmp_path, cache_dir, acts):
    run, last = train_smoke(tmp_path, cache_dir, "btk", "sae=batchtopk")
    sae = load_member(run.root, 0)
    z = sae.batch_select(sae.pre_activations(acts[:256]))
    counts = (z != 0).sum(-1).float()
    assert counts.mean().item() == pytest.approx(32, abs=1e-6)
    assert counts.std().item() > 1.0
    assert sae.threshold[0] > 0  # learned during training; per-token inference uses it
    assert 16 < last[0]["l0"] < 64


def test_relu_l0_falls_as_lambda_rises(tmp_path, cache_dir):
    l0 = [train_smoke(tmp_path, cache_dir, f"relu{lam}", "sae=relu", f"sae.l1_coefficient={lam}")[1][0]["l0"]
          for lam in (1e-4, 1e-3, 1e-2)]
    assert l0[0] > l0[1] > l0[2]


def test_jumprelu_thresholds_move(tmp_path, cache_dir):
    run, _ = train_smoke(tmp_path, cache_dir, "jump", "sae=jumprelu")
    threshold = load_file(str(run.sae_weights(0)))["threshold"]
    assert threshold.shape == (1024,)
    assert (threshold - 0.1).abs().max() > 1e-3  # initialised at 0.1 everywhere


@torch.no_grad()
def test_matryoshka_first_group_reconstructs_better_than_a_random_group(tmp_path, cache_dir, acts):
    run, _ = train_smoke(tmp_path, cache_dir, "mat", "sae=matryoshka")
    sae = load_member(run.root, 0)
    size = sae.group_sizes[0]
    x = acts[:4000]
    z = sae.encode(x)
    first = z.clone()
    first[..., size:] = 0
    perm = torch.randperm(1024, generator=torch.Generator().manual_seed(0))
    chosen = perm[perm >= size][:size]
    rand = torch.zeros_like(z)
    rand[..., chosen] = z[..., chosen]
    assert mse_mean(x, sae.decode(first)).item() < mse_mean(x, sae.decode(rand)).item()


def test_tied_weights_stay_tied(tmp_path, cache_dir):
    run, _ = train_smoke(tmp_path, cache_dir, "tied", "sae=topk", "sae.tied=true")
    w = load_file(str(run.sae_weights(0)))
    assert torch.equal(w["W_enc"], w["W_dec"].T)
    assert run.read_snapshot(0, 2)["decoder"].shape == (1024, 128)
    assert not torch.equal(run.read_snapshot(0, 0)["decoder"], run.read_snapshot(0, 2)["decoder"])
