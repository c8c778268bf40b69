"""Sweeps and run dirs never lose, mix or misreport results: `python train.py` as a subprocess."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sae_lab.artifacts import RunDir
from tests.helpers.runs import ROOT, run_train

QUICK = ("budget=smoke", "budget.epochs=1", "progress=false", "behaviour.enabled=false")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_failing_jobs_fail_alone_and_the_report_lists_them(tmp_path, cache_dir):
    # k=2048 > d_sae is a config error; lr=1e30 makes the loss NaN at step 25; k=16, lr=3e-4 is fine.
    proc = run_train("-m", "k=2048,16", "lr=1e30,3e-4", *QUICK, f"cache_dir={cache_dir}",
                     f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "3 job(s) failed" in proc.stderr
    errors = {p.parent.name: p.read_text() for p in tmp_path.glob("*/error.txt")}
    assert sorted(errors) == ["job0_budget.epochs=1,budget=smoke,k=2048,lr=1e+30",
                              "job1_budget.epochs=1,budget=smoke,k=2048,lr=0.0003",
                              "job2_budget.epochs=1,budget=smoke,k=16,lr=1e+30"]
    assert errors["job1_budget.epochs=1,budget=smoke,k=2048,lr=0.0003"].startswith(
        "k must be between 1 and d_sae=1024, got 2048.")
    assert errors["job2_budget.epochs=1,budget=smoke,k=16,lr=1e+30"].startswith(
        "The training loss became nan at step 25")
    good = RunDir(tmp_path / "job3_budget.epochs=1,budget=smoke,k=16,lr=0.0003")
    assert good.metrics_table()["epoch"].tolist() == [0, 1] and not good.error_file.exists()
    runs = pd.read_csv(tmp_path / "report" / "runs.csv").set_index("run_dir")
    assert runs.loc[str(good.root), "status"] == "ok"
    assert (runs["status"] == "failed").sum() == 3
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "k must be between 1 and d_sae=1024, got 2048." in summary and "became nan" in summary


def test_resuming_another_experiment_is_refused_and_a_finished_run_is_left_alone(tmp_path, cache_dir):
    first = run_train(*QUICK, f"cache_dir={cache_dir}", f"hydra.run.dir={tmp_path}")
    assert first.returncode == 0, first.stderr[-3000:]
    before = _files(tmp_path)
    assert "logs/csv/metrics.csv" in before and ".hydra/config.yaml" in before

    other = run_train(*QUICK, "k=16", f"cache_dir={cache_dir}", f"hydra.run.dir={tmp_path}")
    assert other.returncode == 2
    assert other.stderr.strip().splitlines() == [
        f"error: {tmp_path} already holds a run with k=32, not k=16; resume it with the same settings or choose "
        "a new run dir (hydra.run.dir=... or hydra.sweep.dir=...)."]

    again = run_train(*QUICK, f"cache_dir={cache_dir}", f"hydra.run.dir={tmp_path}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{tmp_path} already finished its 1 epochs" in again.stdout
    final = RunDir(tmp_path).metrics_table().iloc[-1]
    printed = again.stdout.strip().splitlines()[-1].split()
    assert int(printed[0]) == 0 and int(printed[1]) == 1 and float(printed[2]) == pytest.approx(final["mse_mean"],
                                                                                                  rel=1e-4)
    after = {k: v for k, v in _files(tmp_path).items() if not k.endswith(".log")}  # Hydra appends its log
    assert after == {k: v for k, v in before.items() if not k.endswith(".log")}


def test_ctrl_c_says_how_to_resume_and_resuming_keeps_the_logs(tmp_path, cache_dir):
    args = [sys.executable, "train.py", "budget=smoke", "budget.epochs=30", "budget.checkpoint_every=1",
            "progress=false", "behaviour.enabled=false", f"cache_dir={cache_dir}", f"hydra.run.dir={tmp_path}"]
    # SIG_DFL in the child: a test run started in the background (nohup, `&`) inherits SIGINT ignored,
    # and Python would keep ignoring it instead of raising KeyboardInterrupt.
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HYDRA_FULL_ERROR": "0"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    run = RunDir(tmp_path)
    deadline = time.time() + 300
    while not run.last_checkpoint.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert out.splitlines()[0] == f"Run dir: {tmp_path}"  # before anything else is printed
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(rf"Interrupted in epoch \d+; its last checkpoint is {run.last_checkpoint}\. Resume with: "
                        rf"python train\.py .*budget\.epochs=30.* hydra\.run\.dir={tmp_path}", last), last
    first_log = (tmp_path / "logs" / "csv" / "metrics.csv").read_text()
    assert "train/loss" in first_log.splitlines()[0]

    resumed = run_train("budget=smoke", "budget.epochs=4", "budget.checkpoint_every=1", "progress=false",
                        "behaviour.enabled=false", f"cache_dir={cache_dir}", f"hydra.run.dir={tmp_path}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from" in resumed.stdout
    assert (tmp_path / "logs" / "csv" / "metrics.csv").read_text() == first_log  # the first attempt's record
    assert "train/loss" in (tmp_path / "logs" / "csv" / "resume1" / "metrics.csv").read_text()
    assert run.metrics_table()["epoch"].tolist() == [0, 1, 2, 3, 4]


def test_runs_started_together_get_their_own_dirs():
    def start():
        return subprocess.Popen([sys.executable, "train.py", "--cfg", "hydra", "--resolve"], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)

    procs = [start(), start()]
    dirs = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        dirs.append(re.search(r"^  run:\n    dir: (\S+)$", out, re.M).group(1))
    assert dirs[0] != dirs[1] and all(d.startswith("outputs/runs/") for d in dirs)
