"""The report is never fatal: copies of a real smoke run, damaged by hand in every file kind, are listed
with their reason while the good runs' numbers are reported unchanged."""

from __future__ import annotations

import csv
import shutil

import pytest

from sae_lab.analysis import build_report
from sae_lab.artifacts import RunDir
from sae_lab.cli.report import main as report_main

GOOD = ("seed1", "seed2", "seed3")


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _copy_good(smoke_runs, dest):
    for name in GOOD:
        shutil.copytree(smoke_runs / name, dest / name)


def _damaged_copy(smoke_runs, dest, name) -> RunDir:
    """A copy of seed1's run dir (its seed would duplicate seed1 if it were ever used)."""
    shutil.copytree(smoke_runs / "seed1", dest / name)
    return RunDir(dest / name)


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


@pytest.fixture(scope="module")
def clean(smoke_runs, tmp_path_factory):
    """The report of the three good runs alone: what the damaged sweeps must still report."""
    root = tmp_path_factory.mktemp("clean")
    _copy_good(smoke_runs, root)
    report = build_report(root, n_resamples=200, progress=False).parent
    return {(r["epoch"], r["seed_a"], r["seed_b"]): r["mmcs"] for r in _read(report / "pairs.csv")}


def test_damaged_runs_are_listed_and_good_runs_still_reported(smoke_runs, clean, tmp_path):
    _copy_good(smoke_runs, tmp_path)
    _damaged_copy(smoke_runs, tmp_path, "metrics_garbage").metrics_csv.write_bytes(bytes(range(256)) * 4)
    run = _damaged_copy(smoke_runs, tmp_path, "metrics_no_mse")
    run.metrics_csv.write_text(run.metrics_csv.read_text().replace("mse_mean", "mse_gone", 1))
    _truncate(_damaged_copy(smoke_runs, tmp_path, "metrics_truncated").metrics_csv, 0.8)
    _damaged_copy(smoke_runs, tmp_path, "config_bad").config.write_text("seed: [1, 2\nsae: {architecture: topk\n")
    _damaged_copy(smoke_runs, tmp_path, "metrics_removed").metrics_csv.unlink()
    failed = _damaged_copy(smoke_runs, tmp_path, "failed")
    failed.error_file.write_text("Loss became NaN at epoch 1, step 40 (lr=0.0003).\n")
    summary = build_report(tmp_path, n_resamples=200, progress=False)

    runs = {r["run_dir"].rsplit("/", 1)[-1]: r for r in _read(summary.parent / "runs.csv")}
    assert {n: runs[n]["status"] for n in GOOD} == dict.fromkeys(GOOD, "ok")
    expected = {
        "metrics_garbage": ("damaged", "metrics.csv is not UTF-8 text"),
        "metrics_no_mse": ("damaged", "metrics.csv lacks the column(s) mse_mean"),
        "metrics_truncated": ("damaged", "metrics.csv line "),
        "config_bad": ("damaged", "config.yaml is not valid YAML at line 2"),
        "metrics_removed": ("missing metrics", "metrics.csv is missing, though config.yaml and snapshots exist"),
        "failed": ("failed", "Loss became NaN at epoch 1, step 40 (lr=0.0003)."),
    }
    for name, (status, problem) in expected.items():
        assert runs[name]["status"] == status, runs[name]
        assert runs[name]["problem"].startswith(problem), runs[name]
        assert runs[name]["used"] == "no"
    assert "truncated or garbled" in runs["metrics_truncated"]["problem"]
    text = summary.read_text()
    assert "6 broken run(s)" in text
    assert f"- {tmp_path / 'failed'}: failed: Loss became NaN at epoch 1" in text
    assert "failed before its first eval" not in text
    assert "metrics_removed: missing metrics (left out): metrics.csv is missing" in text
    # the good runs' numbers are reported as if the damaged ones were not there
    pairs = {(r["epoch"], r["seed_a"], r["seed_b"]): r["mmcs"] for r in _read(summary.parent / "pairs.csv")}
    assert pairs == clean and len(pairs) == 3 * 3
    assert "Seeds: 1, 2, 3" in text and (summary.parent / "timescale.png").is_file()


def test_one_bad_snapshot_drops_that_epoch_and_a_bad_export_drops_nothing(smoke_runs, clean, tmp_path):
    _copy_good(smoke_runs, tmp_path)
    seed3, seed2, seed1 = (RunDir(tmp_path / n) for n in ("seed3", "seed2", "seed1"))
    _truncate(seed3.snapshot(3, 2))
    seed2.sae_cfg(2).write_text('{"architecture": "topk", "d_in": 12')
    seed1.sae_weights(1).write_bytes(b"\x00garbage" * 50)
    summary = build_report(tmp_path, n_resamples=200, progress=False)

    runs = {r["run_dir"].rsplit("/", 1)[-1]: r for r in _read(summary.parent / "runs.csv")}
    assert [runs[n]["status"] for n in GOOD] == ["damaged"] * 3
    assert [runs[n]["used"] for n in GOOD] == ["yes"] * 3
    assert runs["seed3"]["problem"].startswith("snapshots/seed3/epoch2.safetensors is truncated or not a "
                                               "safetensors file (")
    assert runs["seed3"]["problem"].endswith("epoch 2 of seed 3 is left out")
    assert runs["seed2"]["problem"].startswith("sae/seed2/cfg.json is not valid JSON")
    assert runs["seed1"]["problem"].startswith("sae/seed1/sae_weights.safetensors is truncated or not a safetensors")
    traj = _read(summary.parent / "trajectory.csv")
    assert [int(r["epoch"]) for r in traj] == [0, 1]  # epoch 2 is no longer common to all seeds
    pairs = {(r["epoch"], r["seed_a"], r["seed_b"]): r["mmcs"] for r in _read(summary.parent / "pairs.csv")}
    assert pairs == {k: v for k, v in clean.items() if k[0] != "2"}
    final = _read(summary.parent / "final.csv")
    assert [(f["epoch"], f["n_seeds"]) for f in final] == [("1", "3")]


def test_cli_on_a_dir_without_runs_says_so_and_writes_nothing(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "other"
    (other / "notes").mkdir(parents=True)
    (other / "notes" / "readme.txt").write_text("not a run")
    for root in (empty, other):
        assert report_main([str(root)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.strip().splitlines() == [
            f"error: no run dirs found in {root}: a run dir holds config.yaml, .hydra/config.yaml, metrics.csv "
            "or error.txt."]
        assert not (root / "report").exists()
