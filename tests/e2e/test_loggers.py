"""A logger is one yaml: logger=tensorboard writes event files whose scalars equal metrics.csv."""

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import train_smoke

pytestmark = pytest.mark.slow


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
    from tests.wandb_records import history, run_config

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run, _ = train_smoke(tmp_path, cache_dir, "wb", "logger=wandb", "logger.offline=true", "d_sae=128", "k=8")
    files = list(run.logs_dir.rglob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    config = run_config(files[0])
    assert config["d_sae"] == 128 and config["k"] == 8
    assert config["layer"] == 1  # resolved: layer=null means mod113's default layer
    assert config["sae"]["architecture"] == "topk" and config["budget"]["epochs"] == 2
    logged = {row["trainer/global_step"]: row["eval/seed0/mse_mean"] for row in history(files[0])
              if "eval/seed0/mse_mean" in row}  # W&B counts its own _step; Lightning logs the global step
    table = run.metrics_table()
    assert sorted(logged) == sorted(table["step"]) == [0, 50, 100]
    for step, value in zip(table["step"], table["mse_mean"], strict=True):
        assert logged[step] == pytest.approx(value, rel=1e-6)
