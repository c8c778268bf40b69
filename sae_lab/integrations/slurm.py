"""SLURM runtime bits of a job: which SLURM job a run ran under (slurm.json), and the sweep's report job.

Hydra writes a sweep's report (on_multirun_end) only when every job succeeded and the submitting
process is still alive. So under `hydra/launcher=slurm*` the first job of each array to start also
submits `python -m sae_lab.cli.report <sweep dir>` with `--dependency=afterany:<array>`: the report is
written in every case (when the submitter survives too, both write the same files, atomically).
Preemption and timeouts need no code here: submitit calls the launcher's `checkpoint` (the same job
again), requeues it, and the job resumes from its run dir's checkpoints/last.ckpt."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sae_lab.artifacts import RunDir, atomic_write_text

# SLURM's variables for the job a process runs in -> the keys slurm.json records them under.
ENV_KEYS = {"SLURM_JOB_ID": "job_id", "SLURM_ARRAY_JOB_ID": "array_job_id", "SLURM_ARRAY_TASK_ID": "array_task_id",
            "SLURM_RESTART_COUNT": "restart_count", "SLURMD_NODENAME": "node", "SLURM_JOB_PARTITION": "partition"}
REPORT_TIME_MIN, REPORT_MEM = 60, "4G"  # the report reads decoder snapshots: small, but not tiny


def slurm_ids(env: dict[str, str] | None = None) -> dict[str, str]:
    """The SLURM job this process runs under ({} outside SLURM)."""
    env = os.environ if env is None else env
    if "SLURM_JOB_ID" not in env:
        return {}
    # SLURM sets SLURM_RESTART_COUNT only once a job was requeued: the first attempt is restart 0.
    return {"restart_count": "0"} | {key: env[var] for var, key in ENV_KEYS.items() if var in env}


def record_slurm_job(run: RunDir, env: dict[str, str] | None = None) -> None:
    """Add this attempt to the run dir's slurm.json: a requeued job appends, so the file shows every
    SLURM job (and restart) that wrote into the run. Nothing is written outside SLURM."""
    ids = slurm_ids(env)
    if not ids:
        return
    attempts = []
    if run.slurm_json.is_file():
        try:
            attempts = json.loads(run.slurm_json.read_text()).get("attempts", [])
        except (OSError, ValueError, AttributeError):
            attempts = []  # a damaged record must not stop training; this attempt starts it afresh
    attempts.append({**ids, "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
    atomic_write_text(run.slurm_json, json.dumps({**ids, "attempts": attempts}, indent=2) + "\n")


def report_script(sweep_dir: Path, setup: Sequence[str] | None, resamples: int) -> str:
    """The report job's batch script: the launcher's setup lines, then `python -m sae_lab.cli.report`."""
    command = [sys.executable, "-m", "sae_lab.cli.report", str(sweep_dir), "--resamples", str(resamples)]
    return "\n".join(["#!/bin/bash", *(setup or []), "exec " + shlex.join(command), ""])


def report_sbatch_args(array_id: str, params: Mapping[str, Any], folder: Path) -> list[str]:
    """sbatch options of the report job: after the array, on its partition/account/qos, one CPU."""
    args = [f"--dependency=afterany:{array_id}", "--job-name=sae_lab_report", "--ntasks=1", "--cpus-per-task=1",
            f"--mem={REPORT_MEM}", f"--time={REPORT_TIME_MIN}", f"--output={folder}/report_%j.out",
            f"--chdir={os.getcwd()}"]
    if params.get("partition"):
        args.append(f"--partition={params['partition']}")
    extra = params.get("additional_parameters") or {}
    args += [f"--{key}={extra[key]}" for key in ("account", "qos", "reservation") if extra.get(key)]
    return args


def claim(marker: Path) -> bool:
    """True for exactly one caller across processes and nodes (O_EXCL on the shared sweep dir)."""
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


def submit_report_job(sweep_dir: Path, array_id: str, params: Mapping[str, Any], resamples: int) -> str | None:
    """Submit the dependent report job once per array; its id, or None when another job of the array
    did or sbatch refused (the job goes on either way)."""
    folder = sweep_dir / ".submitit"
    if not claim(folder / f"report_after_{array_id}.job"):
        return None
    script = folder / f"report_after_{array_id}.sbatch"
    atomic_write_text(script, report_script(sweep_dir, params.get("setup"), resamples))
    cmd = ["sbatch", "--parsable", *report_sbatch_args(array_id, params, folder), str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(f"warning: the report job was not submitted ({proc.stderr.strip()}); after the sweep run: "
              f"python -m sae_lab.cli.report {sweep_dir}", file=sys.stderr)
        return None
    job_id = proc.stdout.strip().split(";")[0]
    atomic_write_text(folder / f"report_after_{array_id}.job", job_id + "\n")
    print(f"Report job {job_id} writes {sweep_dir}/report once SLURM job {array_id} ends; "
          f"log: {folder}/report_{job_id}.out", flush=True)
    return job_id


def ensure_report_job(hydra_cfg: Any, multirun: bool) -> None:
    """Called first by each Hydra job (finished, failing or training): in a sweep through submitit's
    SLURM launcher, make sure its array has a report job."""
    launcher = str(hydra_cfg.launcher.get("_target_", ""))
    report = hydra_cfg.callbacks.get("report") or {}
    if not (multirun and "submitit" in launcher and "Slurm" in launcher and report.get("enabled", False)):
        return
    array_id = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    if array_id:
        sweep_dir = Path(str(hydra_cfg.sweep.dir)).absolute()
        submit_report_job(sweep_dir, array_id, hydra_cfg.launcher, int(report.get("resamples", 5000)))
