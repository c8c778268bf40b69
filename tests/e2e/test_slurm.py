"""Sweeps on a real SLURM cluster through `hydra/launcher=slurm_cpu`, and the SLURM bits without one.

The cluster tests need a running cluster: CI starts a one-node one with `tests/slurm/cluster.sh start`
and sets SAE_LAB_SLURM_TESTS=1 (.ci/run). Without that variable they are skipped; with it, a cluster
that is not up fails them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from sae_lab.artifacts import RunDir
from sae_lab.config import CONF_DIR
from sae_lab.integrations.slurm import record_slurm_job, report_sbatch_args, report_script, slurm_ids
from tests.helpers.runs import ROOT

ON = os.environ.get("SAE_LAB_SLURM_TESTS") == "1"
needs_cluster = pytest.mark.skipif(
    not ON, reason="no SLURM cluster meant to be up: set SAE_LAB_SLURM_TESTS=1 after `tests/slurm/cluster.sh start` "
                   "(as root; .ci/run does both)")
# One CPU and 2 GB per job fit the one-node test cluster; smoke runs without the slow parts.
QUICK = ("hydra/launcher=slurm_cpu", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2",
         "hydra.launcher.timeout_min=20", "budget=smoke", "behaviour.enabled=false", "progress=false")


def test_slurm_ids_and_the_record_of_every_attempt(tmp_path):
    env = {"SLURM_JOB_ID": "12", "SLURM_ARRAY_JOB_ID": "10", "SLURM_ARRAY_TASK_ID": "2"}
    assert slurm_ids({}) == {}
    run = RunDir(tmp_path)
    record_slurm_job(run, {})
    assert not run.slurm_json.exists()  # nothing outside SLURM
    record_slurm_job(run, env)
    record_slurm_job(run, {**env, "SLURM_RESTART_COUNT": "1"})
    record = json.loads(run.slurm_json.read_text())
    assert (record["job_id"], record["array_job_id"], record["array_task_id"]) == ("12", "10", "2")
    assert [a["restart_count"] for a in record["attempts"]] == ["0", "1"]


def test_the_report_job_runs_after_the_array_with_the_setup_lines(tmp_path):
    script = report_script(tmp_path, ["module load python"], 100)
    assert script.splitlines()[1] == "module load python"
    assert f"-m sae_lab.cli.report {tmp_path} --resamples 100" in script
    args = report_sbatch_args("77", {"partition": "cpu", "additional_parameters": {"account": "lab"}}, tmp_path)
    assert "--dependency=afterany:77" in args and "--partition=cpu" in args and "--account=lab" in args


@pytest.mark.parametrize("preset", ["slurm", "slurm_cpu"])
def test_the_presets_requeue_timed_out_jobs_and_take_any_sbatch_field(preset):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True, overrides=[
            f"hydra/launcher={preset}", "hydra.launcher.partition=long", "hydra.launcher.timeout_min=5",
            "hydra.launcher.setup=[module load x]", "+hydra.launcher.additional_parameters.account=lab"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher") and launcher.max_num_timeout > 0
    assert (launcher.partition, launcher.timeout_min, list(launcher.setup)) == ("long", 5, ["module load x"])
    assert launcher.additional_parameters.account == "lab"


@pytest.fixture(scope="module")
def cluster() -> None:
    try:
        states = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        pytest.fail(f"SAE_LAB_SLURM_TESTS=1 but sinfo did not answer ({err}); start the cluster first.")
    if states.returncode != 0 or not {"idle", "mixed", "allocated"} & set(states.stdout.split()):
        pytest.fail(f"SAE_LAB_SLURM_TESTS=1 but no SLURM node is up: {states.stdout or states.stderr}")


def start_sweep(sweep_dir: Path, cache_dir: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "disabled"}
    log = (sweep_dir.parent / f"{sweep_dir.name}.log").open("w")
    return subprocess.Popen([sys.executable, "train.py", "-m", *QUICK, *overrides, f"cache_dir={cache_dir}",
                             f"hydra.sweep.dir={sweep_dir}"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, text=True)


def wait_for(check, timeout: float, what: str, proc: subprocess.Popen | None = None):
    """check()'s first truthy value; fails after `timeout` s, or as soon as `proc` (the sweep) ended."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            log = Path(proc.args[-1].split("=", 1)[1] + ".log").read_text()
            pytest.fail(f"the sweep ended (exit {proc.returncode}) before {what}:\n{log[-3000:]}")
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def squeue_state(job: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def mid_run(sweep_dir: Path, seed: int) -> RunDir | None:
    """The run of `seed` once it has a checkpoint after epoch 1 and has not finished yet."""
    for path in sweep_dir.glob(f"job*seed={seed}"):
        run = RunDir(path)
        if run.slurm_json.is_file() and run.last_checkpoint.is_file() and not (run.root / "sae").exists():
            return run
    return None


@pytest.fixture(scope="module")
def preempted_sweep(cluster, tmp_path_factory, cache_dir):
    """Seeds 1..3 as one array; seed 2's job gets SLURM's preemption/timeout signal mid-run."""
    sweep_dir = tmp_path_factory.mktemp("slurm") / "sweep"
    proc = start_sweep(sweep_dir, cache_dir, "seed=1..3", "budget.epochs=4")
    try:
        run = wait_for(lambda: mid_run(sweep_dir, 2), 300, "seed 2's job to pass epoch 1", proc)
        job = json.loads(run.slurm_json.read_text())["job_id"]
        # What SLURM sends signal_delay_s before the time limit (and at preemption): submitit requeues.
        subprocess.run(["scancel", "--signal=USR2", job], check=True)
        wait_for(lambda: squeue_state(job) == "PENDING", 120, "the job to be requeued", proc)
        # SLURM holds a requeued job for ~2 min (its BeginTime); the test need not wait that out.
        subprocess.run(["scontrol", "update", f"jobid={job}", "starttime=now"], check=True)
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    return sweep_dir, proc.returncode, (sweep_dir.parent / "sweep.log").read_text()


@needs_cluster
def test_a_slurm_sweep_runs_as_one_array_and_reports_all_seeds(preempted_sweep):
    sweep_dir, returncode, log = preempted_sweep
    assert returncode == 0, log[-3000:]
    assert "Seeds: 1, 2, 3" in (sweep_dir / "report" / "summary.md").read_text()
    records = [json.loads(RunDir(p).slurm_json.read_text()) for p in sorted(sweep_dir.glob("job*"))]
    assert len(records) == 3 and len({r["array_job_id"] for r in records}) == 1
    assert sorted(r["array_task_id"] for r in records) == ["0", "1", "2"]
    assert all(r["job_id"] for r in records)


@needs_cluster
def test_a_preempted_job_requeues_and_resumes_with_each_eval_epoch_once(preempted_sweep):
    sweep_dir, returncode, log = preempted_sweep
    run = RunDir(next(sweep_dir.glob("job*seed=2")))
    attempts = json.loads(run.slurm_json.read_text())["attempts"]
    assert [a["restart_count"] for a in attempts] == ["0", "1"], attempts
    epochs = run.metrics_table()["epoch"].tolist()
    assert epochs == [0, 1, 2, 3, 4], epochs
    assert (run.root / "sae" / "seed2" / "sae_weights.safetensors").is_file()
    # The job wrote a checkpoint at the next batch before submitit requeued it (not only at an epoch's end).
    logs = "".join(p.read_text(errors="replace") for p in (sweep_dir / ".submitit").rglob("*_log.out"))
    assert "SIGUSR2 received: checkpoint written at step " in logs, logs[-3000:]


@needs_cluster
def test_the_report_job_writes_the_report_when_the_submitter_is_gone(cluster, tmp_path, cache_dir):
    sweep_dir = tmp_path / "sweep"
    proc = start_sweep(sweep_dir, cache_dir, "seed=1..2", "budget.epochs=1")
    try:
        wait_for(lambda: list(sweep_dir.glob("job*/slurm.json")), 300, "the array's jobs to start", proc)
        proc.send_signal(signal.SIGKILL)  # the submitting process dies; the jobs and the report job go on
        proc.wait(timeout=30)
        summary = sweep_dir / "report" / "summary.md"
        wait_for(summary.is_file, 400, "the report job to write the report")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Seeds: 1, 2" in summary.read_text()
    assert list((sweep_dir / ".submitit").glob("report_*.out"))  # it was the report job that wrote it
