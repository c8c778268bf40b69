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
