"""A logger is one yaml: logger=tensorboard writes event files whose scalars equal metrics.csv; logger=wandb
writes one run per seed, grouped by sweep, and the sweep report's summary run."""

import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sae_lab.artifacts import RunDir
from tests.helpers.runs import run_train, train_smoke


def test_tensorboard_event_files_hold_the_eval_metrics(tmp_path, cache_dir):
    run, _ = train_smoke(tmp_path, cache_dir, "tb", "logger=tensorboard", "d_sae=128", "k=8")
    events = list((run.logs_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file under logs/tensorboard/"
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    logged = {int(e.step): e.value for e in acc.Scalars("eval/seed0/mse_mean")}
    table = run.metrics_table()
    expected = dict(zip(table["step"], table["mse_mean"], strict=True))
    assert sorted(logged) == sorted(expected) == [0, 50, 100]
    for step, value in expected.items():
        assert logged[step] == pytest.approx(value, rel=1e-6)
    assert "train/loss" in acc.Tags()["scalars"]


def test_wandb_offline_run_carries_the_resolved_config_and_the_eval_metrics(tmp_path, cache_dir, monkeypatch):
    from tests.helpers.wandb_records import history, run_config

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run, _ = train_smoke(tmp_path, cache_dir, "wb", "logger=wandb", "logger.offline=true", "d_sae=128", "k=8")
    files = list(run.logs_dir.rglob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    config = run_config(files[0])
    assert config["d_sae"] == 128 and config["k"] == 8
    assert config["layer"] == 1  # resolved: layer=null means mod113's default layer
    assert config["sae"]["architecture"] == "topk" and config["budget"]["epochs"] == 2
    assert config["seed"] == 0 and config["member"] == 0
    # One W&B run per seed, so the key carries no seed; W&B counts its own _step, the x axis is the global step.
    logged = {row["trainer/global_step"]: row["eval/mse_mean"] for row in history(files[0])
              if "eval/mse_mean" in row}
    table = run.metrics_table()
    assert sorted(logged) == sorted(table["step"]) == [0, 50, 100]
    for step, value in zip(table["step"], table["mse_mean"], strict=True):
        assert logged[step] == pytest.approx(value, rel=1e-6)


def test_wandb_sweep_logs_each_seed_and_the_report(tmp_path, cache_dir):
    """Done-when of issue 13 (W&B): an offline 2-seed sweep holds both seeds' per-epoch metrics and the
    report's table, read back from the .wandb files."""
    from tests.helpers.wandb_records import history, logged_table, offline_runs, run_config, run_info

    sweep = tmp_path / "sweep"
    wandb_home = tmp_path / "wandb_home"  # nothing of wandb's lands in the user's home or the repo
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(wandb_home),
           "WANDB_CACHE_DIR": str(wandb_home / "cache"), "WANDB_CONFIG_DIR": str(wandb_home / "config"),
           "WANDB_DATA_DIR": str(wandb_home / "data")}
    proc = run_train("-m", "seed=1,2", "logger=wandb", "logger.offline=true", "budget=smoke", "d_sae=128", "k=8",
                     "progress=false", "logger.tags=[mine]", f"cache_dir={cache_dir}", f"hydra.sweep.dir={sweep}",
                     env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "W&B: the report is logged to run 'sweep report' (project sae_lab, group sweep), offline in" in proc.stdout

    seed_runs = {}
    for job in sorted(p for p in sweep.iterdir() if (p / "metrics.csv").is_file()):
        files = offline_runs(job / "logs")
        assert len(files) == 1, f"{job.name}: one W&B run per seed"
        seed_runs[run_config(files[0])["seed"]] = (RunDir(job), files[0])
    assert sorted(seed_runs) == [1, 2]
    for seed, (run, file) in seed_runs.items():
        info = run_info(file)
        assert info["group"] == "sweep" and info["job_type"] == "train"
        assert info["name"] == f"sae=topk,budget=smoke,d_sae=128,k=8 seed={seed}"
        assert {"topk", "mod113", "smoke", "mine"} <= set(info["tags"])
        table = run.metrics_table()
        assert list(table["seed"].unique()) == [seed]
        rows = [row for row in history(file) if "eval/mse_mean" in row]
        assert [row["epoch"] for row in rows] == list(table["epoch"]) == [0, 1, 2]
        metrics = [c for c in table.columns if c not in ("epoch", "step", "seed", "member")]
        assert {"mse_mean", "mmcs_null", "act_effective_rank"} <= set(metrics)
        for row, (_, expected) in zip(rows, table.iterrows(), strict=True):
            assert row["trainer/global_step"] == expected["step"]
            for metric in metrics:  # every column of metrics.csv, NaN (seed 1 had no partner yet) included
                assert row[f"eval/{metric}"] == pytest.approx(expected[metric], rel=1e-6, nan_ok=True), \
                    (seed, metric)

    summary = offline_runs(sweep / "report")
    assert len(summary) == 1
    info = run_info(summary[0])
    assert info == {**info, "name": "sweep report", "group": "sweep", "job_type": "report"}
    report = pd.read_csv(sweep / "report" / "trajectory.csv")
    logged = logged_table(summary[0], "tables/trajectory")
    assert list(logged.columns) == list(report.columns)
    pd.testing.assert_frame_equal(logged.astype(report.dtypes.to_dict()), report, check_exact=False, rtol=1e-9)
    curves = logged_table(summary[0], "mmcs_vs_null/all runs_table")
    assert {"seed 1", "seed 2", "null (random dictionaries)"} <= set(curves["series"])
    assert "figures/timescale" in {k for row in history(summary[0]) for k in row}


def test_wandb_ensemble_members_are_separate_runs(tmp_path, cache_dir, monkeypatch):
    """ensemble=2 trains two seeds in one process and gives two W&B runs, as two jobs would."""
    from tests.helpers.wandb_records import history, offline_runs, run_config, run_info

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run, _ = train_smoke(tmp_path, cache_dir, "ens", "logger=wandb", "logger.offline=true", "d_sae=128", "k=8",
                         "seed=5", "ensemble=2")
    files = {run_config(f)["seed"]: f for f in offline_runs(run.logs_dir)}
    assert sorted(files) == [5, 6]
    table = run.metrics_table()
    for member, (seed, file) in enumerate(sorted(files.items())):
        assert run_config(file)["member"] == member
        assert run_info(file)["name"] == f"sae=topk seed={seed}"  # outside a Hydra job: no overrides, no group
        logged = {row["trainer/global_step"]: row["eval/mse_mean"] for row in history(file) if "eval/mse_mean" in row}
        mine = table[table["seed"] == seed]
        assert sorted(logged) == list(mine["step"]) == [0, 50, 100]
        for step, value in zip(mine["step"], mine["mse_mean"], strict=True):
            assert logged[step] == pytest.approx(value, rel=1e-6)
