"""The GPU path: skipped without CUDA (CI has none). On a GPU machine:

    python -m pytest -q tests/gpu

Each test compares the device's result with the CPU's on the same inputs. SAE_LAB_GPU_TEST_DEVICE=cpu runs the
same comparisons CPU against CPU, to check the module itself where no GPU exists.
"""

from __future__ import annotations

import os

import pandas as pd
import pytest
import torch

from sae_lab.metrics import mmcs, sparse_hungarian
from sae_lab.metrics.agreement import random_dictionaries
from sae_lab.sae import TopKSAE
from tests.helpers.runs import run_train

DEVICE = os.environ.get("SAE_LAB_GPU_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (tests/gpu runs on the GPU machine)")


def test_sparse_training_path_matches_dense_reference_on_the_device():
    """Loss and every gradient of TopK's sparse (embedding_bag) path equal a dense z @ W_dec reference on the
    device, and the CPU's within float tolerance."""
    def grads(device: str) -> tuple[torch.Tensor, dict, dict]:
        torch.manual_seed(0)
        sae = TopKSAE(64, 512, [0, 1, 2], k=16).to(device)
        x = torch.randn(256, 64, generator=torch.Generator().manual_seed(1)).to(device)
        loss = sae.member_loss(x).loss
        loss.sum().backward()
        sparse = {n: p.grad.clone() for n, p in sae.named_parameters()}
        sae.zero_grad()
        values, indices = sae.select(sae.pre_activations(x))
        z = torch.zeros(values.shape[:-1] + (512,), device=device).scatter(-1, indices, values)
        ((torch.bmm(z, sae.W_dec) + sae.b_dec[:, None, :] - x).pow(2).mean(dim=(-2, -1))).sum().backward()
        return loss.detach().cpu(), sparse, {n: p.grad.clone() for n, p in sae.named_parameters()}

    loss, sparse, dense = grads(DEVICE)
    cpu_loss, cpu_sparse, _ = grads("cpu")
    torch.testing.assert_close(loss, cpu_loss, rtol=1e-4, atol=1e-6)
    for name in sparse:
        torch.testing.assert_close(sparse[name], dense[name], rtol=1e-4, atol=1e-6, msg=name)
        torch.testing.assert_close(sparse[name].cpu(), cpu_sparse[name], rtol=1e-3, atol=1e-5, msg=name)


def test_agreement_metrics_on_the_device_equal_the_cpu():
    a, b = random_dictionaries(2, 2048, 256, seed=0)
    assert mmcs(a.to(DEVICE), b.to(DEVICE)) == pytest.approx(mmcs(a, b), abs=1e-5)
    on_device, on_cpu = sparse_hungarian(a.to(DEVICE), b.to(DEVICE)), sparse_hungarian(a, b)
    assert on_device["mean"] == pytest.approx(on_cpu["mean"], abs=1e-5)
    assert on_device["upper_bound"] == pytest.approx(on_cpu["upper_bound"], abs=1e-5)


def test_a_training_run_on_the_device_matches_the_cpu(tmp_path, cache_dir):
    """`python train.py device=<gpu>` on the smoke budget (cache built on the device, training, eval, patched
    CE) writes the same metrics as the CPU run, up to float reduction order."""
    rows = {}
    for device in (DEVICE, "cpu"):
        proc = run_train("budget=smoke", "seed=1", "ensemble=2", f"device={device}", "progress=false",
                         f"cache_dir={cache_dir / device.replace(':', '')}", f"hydra.run.dir={tmp_path / device}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        rows[device] = pd.read_csv(tmp_path / device / "metrics.csv")
    dev, cpu = rows[DEVICE], rows["cpu"]
    assert list(dev["epoch"]) == list(cpu["epoch"]) and list(dev["seed"]) == list(cpu["seed"])
    first = dev["epoch"] == 0  # before any step: only reduction order differs
    for column in ("mse_mean", "fvu", "l0", "ce_loss_score"):
        assert dev.loc[first, column].to_numpy() == pytest.approx(cpu.loc[first, column].to_numpy(), rel=1e-4)
    # after training, topk ties and atomics may send the runs apart a little
    assert dev["fvu"].iloc[-1] == pytest.approx(cpu["fvu"].iloc[-1], rel=0.05)
