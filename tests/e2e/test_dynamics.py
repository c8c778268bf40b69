"""Resampling, the self-consistency regulariser and architecture sweeps, trained for real."""

import pytest
import torch
from omegaconf import OmegaConf

from sae_lab.training.callbacks import candidate_pool
from tests.helpers.runs import run_train, train_smoke


def _column(run, name):
    return {int(r["epoch"]): float(r[name]) for r in run.read_metrics()}


def test_resampling_revives_dead_features(tmp_path, cache_dir):
    run, _ = train_smoke(tmp_path, cache_dir, "rs", "budget.epochs=5", "resample.pool=shared",
                         "resample.every_epochs=4")
    [event] = run.read_resampling()
    assert int(event["epoch"]) == 4 and int(event["n_resampled"]) > 50
    alive = _column(run, "alive_frac")
    assert alive[4] > alive[3] + 0.02  # the eval right after the event
    before, after = run.read_snapshot(0, 3)["firing_counts"], run.read_snapshot(0, 4)["firing_counts"]
    revived = ((before == 0) & (after > 0)).sum().item()
    assert revived > 0.5 * (before == 0).sum().item()


def test_shared_pool_is_common_to_all_seeds_seed_pool_is_not():
    shared = [candidate_pool(12769, 512, "shared", data_seed=0, seed=s, epoch=5)[0] for s in (1, 2)]
    own = [candidate_pool(12769, 512, "seed", data_seed=0, seed=s, epoch=5)[0] for s in (1, 2)]
    assert torch.equal(shared[0], shared[1])
    assert not torch.equal(own[0], own[1])
    assert not torch.equal(candidate_pool(12769, 512, "shared", 0, 1, epoch=10)[0], shared[0])  # new each event
    assert torch.equal(own[0], candidate_pool(12769, 512, "seed", data_seed=3, seed=1, epoch=5)[0])


def test_certificate_regulariser_lowers_the_certificate(tmp_path, cache_dir):
    plain = _column(train_smoke(tmp_path, cache_dir, "l0", "consistency.weight=0")[0], "certificate")
    reg = _column(train_smoke(tmp_path, cache_dir, "l1", "consistency.weight=0.5", "consistency.start=10",
                              "consistency.end=50")[0], "certificate")
    assert plain[0] == pytest.approx(reg[0])  # same initialisation, logged even when λ = 0
    assert reg[2] < 0.5 * plain[2]


def test_glob_sweeps_every_architecture(tmp_path, cache_dir):
    proc = run_train("-m", "sae=glob(*)", "budget=smoke", "budget.epochs=1", "progress=false",
                     f"cache_dir={cache_dir}", f"hydra.sweep.dir={tmp_path}", "hydra.callbacks.report.enabled=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    archs = sorted(OmegaConf.load(p / "config.yaml").sae.architecture
                   for p in tmp_path.iterdir() if (p / "metrics.csv").is_file())
    assert archs == ["batchtopk", "jumprelu", "ksvd", "matryoshka", "relu", "topk"]
