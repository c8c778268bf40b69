"""`python train.py` for real on the smoke budget, and what it wrote."""

import json

import lightning as L
import pandas as pd
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from safetensors.torch import load_file

from sae_lab.artifacts import RunDir
from sae_lab.config import CONF_DIR
from sae_lab.metrics import evt_null
from sae_lab.training.loop import train
from tests.helpers.runs import run_train

METRIC_COLUMNS = ["mse_mean", "fvu", "r2", "sse_per_token", "sst_per_token", "var_explained_dim", "cos_sim",
                  "rel_error_norm", "l0", "alive_frac"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, cache_dir):
    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    proc = run_train("budget=smoke", "seed=4", f"cache_dir={cache_dir}", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return RunDir(run_dir), proc


def test_run_writes_the_run_dir(smoke_run):
    run, proc = smoke_run
    assert "Final metrics" in proc.stdout and str(run.root) in proc.stdout
    rows = run.read_metrics()
    assert [(int(r["epoch"]), int(r["seed"])) for r in rows] == [(0, 4), (1, 4), (2, 4)]
    assert all(c in rows[0] for c in METRIC_COLUMNS)
    assert int(rows[-1]["step"]) == 100  # 2 epochs x 50 steps of batch 256 over 12,769 inputs
    assert float(rows[-1]["mse_mean"]) < float(rows[0]["mse_mean"])
    assert float(rows[-1]["l0"]) <= 32
    assert run.snapshot_epochs(4) == [0, 1, 2]
    snap = run.read_snapshot(4, 2)
    assert snap["decoder"].shape == (1024, 128) and snap["firing_counts"].shape == (1024,)
    assert torch.allclose(snap["decoder"].norm(dim=-1), torch.ones(1024), atol=1e-5)
    assert run.last_checkpoint.is_file() and run.config.is_file()
    cfg = json.loads(run.sae_cfg(4).read_text())
    assert (cfg["architecture"], cfg["d_in"], cfg["d_sae"], cfg["k"]) == ("topk", 128, 1024, 32)
    assert cfg["metadata"]["hook_name"] == "blocks.1.hook_resid_post"
    assert set(load_file(str(run.sae_weights(4)))) == {"W_enc", "b_enc", "W_dec", "b_dec"}


def _mod113_layer1_cache(cache_dir):
    """The smoke run's activations: the session-wide cache dir also holds other subjects' entries
    (synthetic, other layers), so the first entry found is not necessarily this run's."""
    for meta in sorted(cache_dir.glob("*/meta.json")):
        spec = json.loads(meta.read_text())["spec"]
        if spec["model"] == "mod113" and spec["hook"] == "blocks.1.hook_resid_post":
            return meta.parent / "activations.safetensors"
    raise AssertionError(f"no mod113 layer-1 cache entry in {cache_dir}")


def test_config_yaml_holds_the_resolved_values(smoke_run):
    run, _ = smoke_run
    text = run.config.read_text()
    assert "${" not in text
    cfg = yaml.safe_load(text)
    assert (cfg["device"], cfg["d_sae"], cfg["k"], cfg["seed"]) == ("cpu", 1024, 32, 4)
    assert "${" in (run.root / ".hydra" / "config.yaml").read_text()  # the interpolation source stays in .hydra/


def test_logged_metrics_recompute_from_exported_sae(smoke_run, cache_dir):
    """The final row of metrics.csv against a reconstruction computed here with plain torch from the exported
    weights (SAELens layout) and the formulas of docs/metrics.md — not with the code that logged them."""
    run, _ = smoke_run
    w = load_file(str(run.sae_weights(4)))
    assert torch.equal(w["W_dec"], run.read_snapshot(4, 2)["decoder"])
    x = load_file(str(_mod113_layer1_cache(cache_dir)))["activations"].double()
    pre = (x - w["b_dec"].double()) @ w["W_enc"].double() + w["b_enc"].double()
    values, indices = pre.topk(32, dim=-1)
    z = torch.zeros_like(pre).scatter_(-1, indices, values.relu())
    x_hat = z @ w["W_dec"].double() + w["b_dec"].double()
    n, d = x.shape
    sse = ((x - x_hat) ** 2).sum()
    sst = ((x - x.mean(dim=0)) ** 2).sum()
    counts = (z != 0).sum(dim=0)
    want = {"mse_mean": sse / (n * d), "fvu": sse / sst, "r2": 1 - sse / sst, "sse_per_token": sse / n,
            "sst_per_token": sst / n,
            "var_explained_dim": 1 - ((x - x_hat).var(dim=0, unbiased=False) / x.var(dim=0, unbiased=False)).mean(),
            "cos_sim": torch.nn.functional.cosine_similarity(x, x_hat, dim=-1).mean(),
            "rel_error_norm": ((x - x_hat).norm(dim=-1) / x.norm(dim=-1)).mean(),
            "l0": (z != 0).sum(dim=-1).double().mean(), "alive_frac": (counts > 0).double().mean()}
    row = run.read_metrics()[-1]
    for name in METRIC_COLUMNS:
        assert float(row[name]) == pytest.approx(want[name].item(), rel=1e-4), name
    logged = run.read_snapshot(4, 2)["firing_counts"].long()
    # float64 here vs float32 there: a token whose 32nd and 33rd pre-activations nearly tie may pick another
    assert (counts - logged).abs().sum() <= 1e-3 * counts.sum()


def test_same_seed_gives_identical_decoders(smoke_run, tmp_path, cache_dir):
    run, _ = smoke_run
    proc = run_train("budget=smoke", "seed=4", f"cache_dir={cache_dir}", f"hydra.run.dir={tmp_path}",
                     "progress=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = RunDir(tmp_path)
    for epoch in (0, 1, 2):
        assert torch.equal(run.read_snapshot(4, epoch)["decoder"], again.read_snapshot(4, epoch)["decoder"])


class BatchRecorder(L.Callback):
    def __init__(self):
        self.sums = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.sums.append((batch.shape[0], batch.double().sum().item(), batch[0, :4].tolist()))


def _compose(*overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=["budget=smoke", "progress=false", *overrides])


def test_different_seeds_see_identical_batches(tmp_path, cache_dir):
    recorders = {s: BatchRecorder() for s in (1, 2)}
    for seed, rec in recorders.items():
        train(_compose(f"seed={seed}", f"cache_dir={cache_dir}"), tmp_path / f"s{seed}", callbacks=[rec])
    assert len(recorders[1].sums) == 100
    assert recorders[1].sums == recorders[2].sums
    a, b = RunDir(tmp_path / "s1"), RunDir(tmp_path / "s2")
    assert not torch.equal(a.read_snapshot(1, 0)["decoder"], b.read_snapshot(2, 0)["decoder"])


def test_ensemble_member_matches_solo_run(tmp_path, cache_dir):
    train(_compose("seed=1", "ensemble=3", f"cache_dir={cache_dir}"), tmp_path / "ens")
    train(_compose("seed=2", f"cache_dir={cache_dir}"), tmp_path / "solo")
    ens, solo = RunDir(tmp_path / "ens"), RunDir(tmp_path / "solo")
    assert ens.seeds() == [1, 2, 3]
    assert torch.equal(ens.read_snapshot(2, 0)["decoder"], solo.read_snapshot(2, 0)["decoder"])
    # Members never interact: after training, member 2 still tracks the solo run (float noise only).
    assert torch.allclose(ens.read_snapshot(2, 2)["decoder"], solo.read_snapshot(2, 2)["decoder"], atol=1e-3)
    rows = {(int(r["seed"]), int(r["epoch"])): float(r["mse_mean"]) for r in ens.read_metrics()}
    solo_rows = {int(r["epoch"]): float(r["mse_mean"]) for r in solo.read_metrics()}
    assert rows[(2, 2)] == pytest.approx(solo_rows[2], rel=1e-3)


def test_multirun_seed_range_launches_three_jobs(tmp_path, cache_dir):
    proc = run_train("-m", "seed=1..3", "budget=smoke", "progress=false", f"cache_dir={cache_dir}",
                     f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    job_dirs = sorted(p for p in tmp_path.iterdir() if (p / "metrics.csv").is_file())
    assert len(job_dirs) == 3
    seeds = sorted(int(RunDir(p).read_metrics()[0]["seed"]) for p in job_dirs)
    assert seeds == [1, 2, 3]
    # Each job measured agreement with the siblings whose snapshots were already on disk.
    last_job = RunDir(job_dirs[-1]).read_metrics()
    assert {int(r["n_partners"]) for r in last_job} == {2}
    # MMCS recomputed from the three jobs' decoder snapshots with plain torch: the mean over the two
    # partners of ½ [mean_i max_j |cos| + mean_j max_i |cos|].
    for row in last_job:
        epoch, decoders = int(row["epoch"]), {}
        for p in job_dirs:
            run = RunDir(p)
            seed = int(run.read_metrics()[0]["seed"])
            d = run.read_snapshot(seed, epoch)["decoder"].double()
            decoders[seed] = d / d.norm(dim=1, keepdim=True)
        sims = [(decoders[3] @ decoders[p].T).abs() for p in (1, 2)]
        want = sum(0.5 * (s.max(dim=1).values.mean() + s.max(dim=0).values.mean()) for s in sims) / 2
        assert float(row["mmcs"]) == pytest.approx(want.item(), abs=1e-5)
        assert float(row["mmcs_null"]) == pytest.approx(evt_null(128, 1024))
    assert float(last_job[0]["act_effective_rank"]) > 1
    # ... and the sweep ended with the report, its headline the last lines on the terminal.
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "Seeds: 1, 2, 3" in summary and "Report:" in proc.stdout
    tail = proc.stdout.strip().splitlines()[-3:]
    assert tail[0] == "Final epoch per condition (full tables: summary.md):"
    final = pd.read_csv(tmp_path / "report" / "final.csv").iloc[0]
    assert tail[1].startswith(f"  all runs (epoch 2, 3 seeds): MMCS {final['mmcs']:.4f} [")
    assert f"{final['mmcs_x_random']:.3f}× random, {final['verdict']}; FVU {final['fvu']:.4f}" in tail[1]
    assert tail[2] == f"Report: {tmp_path / 'report'}"


def test_resume_keeps_earlier_results(tmp_path, cache_dir):
    first = run_train("budget=smoke", "budget.epochs=1", "progress=false", f"cache_dir={cache_dir}",
                      f"hydra.run.dir={tmp_path}")
    assert first.returncode == 0, first.stderr[-3000:]
    run = RunDir(tmp_path)
    epoch1 = run.read_metrics()[-1]
    second = run_train("budget=smoke", "progress=false", f"cache_dir={cache_dir}",
                       f"hydra.run.dir={tmp_path}")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Resuming from" in second.stdout
    rows = run.read_metrics()
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert {k: rows[1][k] for k in epoch1} == epoch1 and int(rows[2]["step"]) == 100


@pytest.mark.parametrize("override, sentence", [
    ("sae=foo", "error: sae=foo is not a known choice; allowed: batchtopk, jumprelu, ksvd, matryoshka, relu, topk."),
    ("seed=abc", "error: seed must be an integer, got 'abc'."),
    ("k=2048", "error: k must be between 1 and d_sae=1024, got 2048."),
    ("layer=7", "error: layer must be between 0 and 1 for model mod113, got 7."),
    ("model.weights=nope", "error: model.weights=nope is not a mod-113 network in sae_lab/models/weights; shipped: "
                           "mod113 (reinstall sae_lab or train one with scripts/train_mod113.py)."),
    ("sae.l1_coefficient=0.1", "error: sae.l1_coefficient does not apply to sae=topk; its keys are sae.tied, "
                               "sae.oracle_decoder, sae.aux_k, sae.aux_coefficient, sae.dead_steps."),
])
def test_bad_config_one_sentence_nonzero_exit(override, sentence, tmp_path, cache_dir):
    proc = run_train("budget=smoke", override, f"cache_dir={cache_dir}", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [sentence]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "metrics.csv").exists()


def test_submitit_launcher_runs_the_sweep(tmp_path, cache_dir):
    """The SLURM presets use hydra-submitit-launcher; its local executor exercises the same path."""
    proc = run_train("-m", "seed=1..2", "budget=smoke", "budget.epochs=1", "progress=false",
                     "hydra/launcher=submitit_local", f"cache_dir={cache_dir}", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    seeds = sorted(int(RunDir(p).read_metrics()[0]["seed"]) for p in tmp_path.iterdir()
                   if (p / "metrics.csv").is_file())
    assert seeds == [1, 2]
    assert "Seeds: 1, 2" in (tmp_path / "report" / "summary.md").read_text()


def test_nan_loss_stops_with_one_sentence_and_keeps_results(tmp_path, cache_dir):
    proc = run_train("budget=smoke", "budget.epochs=1", "lr=1e30", "progress=false", f"cache_dir={cache_dir}",
                     f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (  # earlier stderr lines: the cache-building bar
        "error: The training loss became nan at step 25; lower lr (now 1e+30) or check the activations for NaN/inf.")
    assert "Traceback" not in proc.stderr
    assert [int(r["epoch"]) for r in RunDir(tmp_path).read_metrics()] == [0]  # the epoch-0 eval is kept
