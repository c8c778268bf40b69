"""Killed at any moment, a run loses nothing already written; the same command again ends exactly where an
uninterrupted run ends. SIGTERM / SIGUSR1 write a checkpoint first. `python train.py` as a subprocess;
tests/helpers/kill_driver.py SIGKILLs it at instants a timer cannot hit (between a temp file and its rename)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from sae_lab.artifacts import RunDir, report_dir
from tests.helpers.runs import ROOT, run_train

# 3 epochs of 50 steps, evals every epoch, checkpoints after epochs 2 and 3, two members.
ARGS = ("budget=smoke", "budget.epochs=3", "budget.checkpoint_every=2", "ensemble=2", "d_sae=128", "k=8",
        "progress=false", "behaviour.max_sequences=128")
SEEDS = (0, 1)


def _env() -> dict[str, str]:
    return {**os.environ, "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "disabled"}


def _train(run: Path, cache: Path) -> subprocess.CompletedProcess:
    return run_train(*ARGS, f"cache_dir={cache}", f"hydra.run.dir={run}")


def _killed(when: str, *command: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "tests/helpers/kill_driver.py", when, *command], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env=_env())
    assert proc.returncode == -signal.SIGKILL, f"{when} never happened:\n{proc.stderr[-2000:]}"
    return proc


def _results(run: RunDir) -> dict[str, object]:
    """What a run produced: metrics.csv as text, every snapshot and every exported SAE as tensors."""
    out: dict[str, object] = {"metrics.csv": run.metrics_csv.read_text()}
    for seed in SEEDS:
        for epoch in run.snapshot_epochs(seed):
            out[f"snapshot {seed}/{epoch}"] = run.read_snapshot(seed, epoch)
        out[f"sae {seed}"] = load_file(str(run.sae_weights(seed)))
        out[f"cfg {seed}"] = run.sae_cfg(seed).read_text()
    return out


def _assert_same(got: dict[str, object], want: dict[str, object]) -> None:
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        if isinstance(value, dict):
            assert sorted(got[key]) == sorted(value), key
            for name, tensor in value.items():
                assert torch.equal(got[key][name], tensor), f"{key}: {name} differs"
        else:
            assert got[key] == value, f"{key} differs"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir) -> dict[str, object]:
    run = tmp_path_factory.mktemp("uninterrupted")
    proc = _train(run, cache_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _results(RunDir(run))


@pytest.mark.parametrize("when", [
    "step:120",                         # mid-epoch; the last checkpoint is step 100's (end of the 2nd epoch)
    "replace:last.ckpt:2",              # writing the final checkpoint: its temp file complete, not yet renamed
    "replace:sae_weights.safetensors:2",  # exporting the second member, after training ended
])
def test_sigkill_then_the_same_command_ends_as_an_uninterrupted_run(tmp_path, cache_dir, reference, when):
    run = RunDir(tmp_path / "run")
    _killed(when, "train.py", *ARGS, f"cache_dir={cache_dir}", f"hydra.run.dir={run.root}")
    written = [p for p in run.root.rglob("*") if p.is_file() and not p.name.endswith(".tmp")]
    for path in written:  # what was written is complete: every table and tensor file loads
        if path.suffix == ".csv":
            pd.read_csv(path)
        elif path.suffix == ".safetensors":
            load_file(str(path))
    again = _train(run.root, cache_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    if run.last_checkpoint.is_file() and when != "replace:sae_weights.safetensors:2":
        assert "Resuming from" in again.stdout
    _assert_same(_results(run), reference)


def test_sigkill_during_the_cache_build_then_the_same_command_builds_it(tmp_path, reference):
    cache = tmp_path / "cache"
    run = RunDir(tmp_path / "run")
    _killed("replace:meta.json:1", "train.py", *ARGS, f"cache_dir={cache}", f"hydra.run.dir={run.root}")
    assert not list(cache.rglob("meta.json"))  # an entry without meta.json is never read as complete
    again = _train(run.root, cache)
    assert again.returncode == 0, again.stderr[-3000:]
    _assert_same(_results(run), reference)


def test_sigkill_during_the_report_then_report_again_writes_it_whole(tmp_path, cache_dir):
    sweep = tmp_path / "sweep"
    proc = _train(sweep / "job0", cache_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = [sys.executable, "-m", "sae_lab.cli.report", str(sweep), "--resamples", "200"]
    first = subprocess.run(report, cwd=ROOT, capture_output=True, text=True, timeout=600, env=_env())
    assert first.returncode == 0, first.stderr[-3000:]
    out = report_dir(sweep)
    whole = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix in (".csv", ".md")}
    assert "summary.md" in whole and "trajectory.csv" in whole
    _killed("replace:summary.md:1", "-m", "sae_lab.cli.report", str(sweep), "--resamples", "200")
    # The report is built in a temporary folder and swapped in whole: killed while writing its last file,
    # it leaves report/ exactly as the previous report wrote it, and its half-built folder aside.
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix in (".csv", ".md")} == whole
    (temp,) = sweep.glob(".report.tmp-*")
    assert (temp / "trajectory.csv").is_file() and not (temp / "summary.md").exists()
    again = subprocess.run(report, cwd=ROOT, capture_output=True, text=True, timeout=600, env=_env())
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix in (".csv", ".md")} == whole
    assert list(sweep.glob(".report.*")) == []  # the killed writer's folder is cleared by the next report


def _wait_for_epoch(run: RunDir, epoch: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    end = time.time() + timeout
    while time.time() < end:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        if run.metrics_csv.is_file() and f"\n{epoch}," in run.metrics_csv.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"epoch {epoch} never evaluated")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_a_signal_writes_a_checkpoint_and_the_same_command_resumes(tmp_path, cache_dir, reference, signum):
    run = RunDir(tmp_path / "run")
    # checkpoint_every beyond the budget: the only checkpoint before the end is the one the signal writes
    args = [*ARGS, "budget.checkpoint_every=100", f"cache_dir={cache_dir}", f"hydra.run.dir={run.root}"]
    proc = subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    _wait_for_epoch(run, 1, proc)
    time.sleep(0.3)  # into epoch 2's batches
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signum, stderr[-3000:]
    name = signal.Signals(signum).name
    step = torch.load(run.last_checkpoint, weights_only=False)["global_step"]
    assert f"{name} received: checkpoint written at step {step} " in stdout
    assert step > 50
    message = stderr.strip().splitlines()[-1]
    assert message.startswith(f"Stopped by {name} in epoch ") and "Resume with: python train.py" in message
    again = run_train(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"Resuming from {run.last_checkpoint}" in again.stdout
    _assert_same(_results(run), reference)  # checkpoint_every is an execution key: the results are the same
