"""What the machine does wrong gets one sentence and leaves nothing behind (`python train.py` as a
subprocess): unusable cache and run dirs are refused before anything is created (exit 2), a full disk
mid-run stops with the resume command (exit 3) and the resumed run ends as an uninterrupted one does,
Ctrl-C at any moment of the start is one line, and an unparseable sweep range is refused up front."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.runs import ROOT, run_train

QUICK = ("budget=smoke", "progress=false", "behaviour.enabled=false")


def _one_sentence(proc: subprocess.CompletedProcess, code: int) -> str:
    assert proc.returncode == code, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    said = [line for line in lines if line.startswith("error:")]  # (a cache build's progress bar may precede it)
    assert len(said) == 1 and lines[-1] == said[0], proc.stderr
    return said[0]


@pytest.mark.parametrize("where", ["cache_dir", "hydra.run.dir"])
@pytest.mark.parametrize("problem", ["missing parent", "not a directory"])
def test_an_unusable_dir_is_refused_before_anything_is_created(tmp_path, cache_dir, where, problem):
    (tmp_path / "a_file").write_text("not a folder")
    bad = "/proc/nope/x" if problem == "missing parent" else str(tmp_path / "a_file" / "x")
    run_dir = tmp_path / "run"
    args = {"cache_dir": str(cache_dir), "hydra.run.dir": str(run_dir)} | {where: bad}
    proc = run_train(*QUICK, *(f"{k}={v}" for k, v in args.items()), f"hydra.sweep.dir={tmp_path / 'sweep'}")
    line = _one_sentence(proc, 2)
    assert line.startswith(f"error: {where}={bad} cannot be")
    assert ("is a file, not a folder" in line) == (problem == "not a directory")
    assert not run_dir.exists() and not (tmp_path / "sweep").exists()


def test_an_unusable_sweep_dir_is_refused_before_anything_is_created(tmp_path, cache_dir):
    (tmp_path / "a_file").write_text("")
    proc = run_train("-m", "seed=1..2", *QUICK, f"cache_dir={cache_dir}", f"hydra.sweep.dir={tmp_path}/a_file/s")
    assert _one_sentence(proc, 2) == (f"error: hydra.sweep.dir={tmp_path}/a_file/s cannot be used: "
                                      f"{tmp_path}/a_file is a file, not a folder; choose another path.")


@pytest.mark.parametrize("argument, sentence", [
    ("seed=a..b", "error: seed=a..b is not a range: write seed=a..b with integers a <= b (e.g. seed=1..20)."),
    ("seed=1,x", "error: seed must be an integer, got 'x'."),
])
def test_a_bad_sweep_value_is_refused_before_the_sweep_dir_exists(tmp_path, cache_dir, argument, sentence):
    proc = run_train("-m", argument, *QUICK, f"cache_dir={cache_dir}", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert _one_sentence(proc, 2) == sentence
    assert not (tmp_path / "sweep").exists()


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a small tmpfs (a full disk) is not permitted here: {done.stderr.decode().strip()}")


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "3m")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _values(run_dir: Path) -> pd.DataFrame:
    table = pd.read_csv(run_dir / "metrics.csv")
    return table.drop(columns=[c for c in table.columns if "time" in c or "sec" in c])


def test_a_full_disk_mid_run_stops_with_the_resume_command_and_the_resume_matches(small_disk, tmp_path, cache_dir):
    reference = tmp_path / "reference"
    args = (*QUICK, "budget.epochs=4", "budget.checkpoint_every=1", f"cache_dir={cache_dir}")
    assert run_train(*args, f"hydra.run.dir={reference}").returncode == 0
    run_dir = small_disk / "run"
    proc = run_train(*args, f"hydra.run.dir={run_dir}")
    line = _one_sentence(proc, 3)
    assert line.startswith(f"error: the run stopped at {run_dir}/") and "no space left on the device" in line
    resume = line.split("resume with: ", 1)[1].rstrip(".")
    assert resume.startswith("python train.py ") and f"hydra.run.dir={run_dir}" in resume
    assert not list(run_dir.rglob("*.tmp*")), "a half-written file was left behind"
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = subprocess.run([sys.executable, *shlex.split(resume)[1:]], cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    pd.testing.assert_frame_equal(_values(run_dir), _values(reference))


def test_a_full_disk_while_caching_stops_with_one_sentence(small_disk, tmp_path):
    proc = run_train(*QUICK, f"cache_dir={small_disk}/cache", f"hydra.run.dir={tmp_path / 'run'}")
    line = _one_sentence(proc, 3)
    assert "no space left on the device" in line and "resume with: python train.py" in line
    assert not [p for p in (small_disk / "cache").rglob("*") if p.is_file() and p.name.endswith(".safetensors")]


@pytest.mark.parametrize("delay", [0.2, 0.8, 1.6, 3.0])
def test_ctrl_c_at_any_moment_of_the_start_is_one_line(tmp_path, cache_dir, delay):
    proc = subprocess.Popen([sys.executable, "train.py", *QUICK, f"cache_dir={cache_dir}",
                             f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip(f"the smoke run finished within {delay} s on this machine")
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in err
    said = [line for line in err.splitlines() if line.startswith(("Interrupted", "Run interrupted"))
            or "Resume with" in line]
    assert len(said) == 1, err
    if (tmp_path / "run" / "config.yaml").exists():  # once a run dir holds a run, the line says how to resume
        assert "Resume with: python train.py" in said[0]


@pytest.mark.parametrize("where", ["cache_dir", "hydra.run.dir"])
def test_a_read_only_file_system_is_refused_before_anything_is_created(tmp_path, cache_dir, where):
    disk = tmp_path / "ro"
    _mount_tmpfs(disk, "1m")
    try:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True, capture_output=True)
        args = {"cache_dir": str(cache_dir), "hydra.run.dir": str(tmp_path / "run")} | {where: str(disk / "x")}
        proc = run_train(*QUICK, *(f"{k}={v}" for k, v in args.items()))
        assert _one_sentence(proc, 2) == (f"error: {where}={disk / 'x'} cannot be created or written (the file "
                                          f"system is read-only in {disk}); choose a writable folder.")
        assert not (tmp_path / "run").exists()
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
