"""DB-KSVD and the synthetic subject end to end: a sweep into a report with the recovery columns and figure,
DB-KSVD on mod113, and recovery of a known low-coherence dictionary by DB-KSVD and by TopK."""

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from sae_lab.sae.export import load_member
from sae_lab.sae.ksvd import KSVDSAE
from tests.helpers.runs import run_train, train_smoke

# d 128 observations of 256 true latents, 4 per sample, i.i.d. Gaussian columns (ρ = 0, max |cos| ≈ 0.4),
# no noise, 16,384 training samples; both learners get d_sae 512 (twice the truth) and k 4.
LOW_COHERENCE = ["model=synthetic", "model.d=128", "d_sae=512", "k=4", "budget.eval_schedule=log", "budget.n_evals=3"]
# Budgets: DB-KSVD 10 epochs = 10 iterations (one 16,384-sample batch each); TopK 20 epochs of 64 Adam steps.
BUDGETS = {"ksvd": ["sae=ksvd", "budget.epochs=10"], "topk": ["sae=topk", "budget.epochs=20", "lr=1e-3"]}
RANDOM_ERROR_FACTOR = 4  # the final relative error is at most 1/4 of the random (epoch-0) dictionary's


def test_ksvd_sweep_on_synthetic_ends_in_a_report(tmp_path, cache_dir):
    proc = run_train("-m", "seed=1..3", "sae=ksvd", "model=synthetic", "budget=smoke", "progress=false",
                     "trainer.log_every_n_steps=1", f"cache_dir={cache_dir}", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Behaviour (patched CE) is skipped" in proc.stdout
    report = tmp_path / "report"
    summary = (report / "summary.md").read_text()
    assert "0 broken run(s)" in summary and "## Recovery of the true dictionary" in summary
    assert (report / "recovery.png").is_file()
    trajectory = pd.read_csv(report / "trajectory.csv")
    assert {"gt_hungarian_mean", "gt_latent_error", "gt_cert_spearman", "mmcs"} <= set(trajectory.columns)
    jobs = sorted(p for p in tmp_path.iterdir() if p.name.startswith("job"))
    assert len(jobs) == 3
    metrics = pd.read_csv(jobs[0] / "metrics.csv")
    assert metrics["gt_hungarian_mean"].notna().all() and metrics["step"].tolist() == [0, 1, 2]
    # The report's relative error (recovery.png's fourth panel) is the mean over the seeds' metrics.csv.
    by_seed = pd.concat(pd.read_csv(job / "metrics.csv") for job in jobs).groupby("epoch")["rel_error_norm"].mean()
    assert trajectory.set_index("epoch")["rel_error_norm"].to_numpy() == pytest.approx(by_seed.to_numpy(), rel=1e-6)
    # The training error after each iteration (DB-KSVD's train/loss), averaged over the three runs' CSV logs.
    logged = [pd.read_csv(job / "logs" / "csv" / "metrics.csv")[["step", "train/loss"]].dropna() for job in jobs]
    expected = pd.concat(logged).groupby("step")["train/loss"].mean()
    training = pd.read_csv(report / "training_loss.csv")
    assert expected.index.tolist() == [0, 1] and training["updates"].tolist() == [1, 2]  # smoke: 2 iterations
    assert training["train_loss"].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-6)
    assert training["train_loss"].iloc[-1] < training["train_loss"].iloc[0]  # the fit improves on its data
    assert "## Training loss by update" in summary and (report / "training_loss.png").is_file()
    # With no d_sae or k given, the learner is sized to the subject's truth (256 latents, 4 per sample).
    config = OmegaConf.load(jobs[0] / "config.yaml")
    assert (config.d_sae, config.k) == (256, 4)
    assert load_member(jobs[0], 1).decoder()[0].shape[0] == 256


@torch.no_grad()
def test_ksvd_on_mod113_trains_exports_and_reloads(tmp_path, cache_dir):
    run, last = train_smoke(tmp_path, cache_dir, "ksvd", "sae=ksvd", "d_sae=256", "k=8",
                            "behaviour.max_sequences=512")
    rows = run.read_metrics()
    assert float(rows[-1]["fvu"]) < float(rows[0]["fvu"]) and last[0]["l0"] <= 8
    assert 0.0 <= last[0]["ce_loss_score"] <= 1.0 + 1e-3  # patched CE works with matching-pursuit codes
    sae = load_member(run.root, 0)
    assert type(sae) is KSVDSAE and sae.k == 8
    assert torch.equal(sae.decoder()[0], run.read_snapshot(0, 2)["decoder"])


@pytest.mark.parametrize("learner", ["ksvd", "topk"])
def test_learner_recovers_a_low_coherence_dictionary(learner, tmp_path, cache_dir):
    run, last = train_smoke(tmp_path, cache_dir, learner, *LOW_COHERENCE, *BUDGETS[learner])
    rows = run.read_metrics()
    first, final = rows[0], last[0]
    assert final["gt_hungarian_mean"] >= 0.95, final  # mean matched |cos| of the 256 true atoms
    assert final["rel_error_norm"] * RANDOM_ERROR_FACTOR < float(first["rel_error_norm"])
