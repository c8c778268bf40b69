"""One Hydra job of `python train.py`: check its config and run dir, write Hydra's record, train.

A job that fails inside a sweep fails alone: its run dir gets error.txt saying why, the other jobs
run, and `python train.py -m ...` exits 1 after the report. A single run's bad config exits 2."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sae_lab.artifacts import RunDir, atomic_write_text
from sae_lab.cli.interrupts import INTERRUPTED_EXIT, restore_sigint
from sae_lab.config import ConfigError, validate
from sae_lab.errors import FAULT_EXIT, fault_sentence
from sae_lab.integrations.slurm import ensure_report_job, record_slurm_job

# Run dirs (resolved paths) of this process's jobs that failed (the sweep's exit code); SweepReport adds jobs that
# failed in other processes (submitit), found by their error.txt.
FAILED_JOBS: set[str] = set()


def write_hydra_record(run: RunDir, cfg: DictConfig, hydra_cfg: DictConfig) -> None:
    """What Hydra writes to .hydra/ (its own writing is off in conf/train.yaml, so that a job that must
    not touch an existing run dir does not overwrite that run's record first)."""
    atomic_write_text(run.hydra_file("config.yaml"), OmegaConf.to_yaml(cfg))
    atomic_write_text(run.hydra_file("hydra.yaml"), OmegaConf.to_yaml({"hydra": hydra_cfg}))
    atomic_write_text(run.hydra_file("overrides.yaml"), OmegaConf.to_yaml(list(hydra_cfg.overrides.task)))


def resume_command(hydra_cfg: DictConfig, multirun: bool) -> str:
    overrides = [o for o in hydra_cfg.overrides.task if not o.startswith(("hydra.run.dir=", "hydra.sweep.dir="))]
    if multirun:
        where = f"hydra.sweep.dir={hydra_cfg.sweep.dir}"
        overrides = list(hydra_cfg.overrides.get("sweeper") or []) or overrides
        return " ".join(["python train.py -m", *overrides, where])
    return " ".join(["python train.py", *overrides, f"hydra.run.dir={hydra_cfg.runtime.output_dir}"])


def fail_job(run: RunDir, reason: str, detail: str | None = None) -> None:
    """Record a failed sweep job in its run dir (error.txt) and for the sweep's exit code."""
    atomic_write_text(run.error_file, reason.rstrip() + "\n" + (f"\n{detail}" if detail else ""))
    FAILED_JOBS.add(str(run.root.resolve()))
    print(f"error: {reason} (written to {run.error_file}; the sweep goes on)", file=sys.stderr)


def run_task(cfg: DictConfig) -> None:
    """The function Hydra calls once per job. A fault of the machine (a full disk, a folder that became
    unwritable) or Ctrl-C before training stops the process with one sentence and the resume command."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    run = RunDir(Path(hydra_cfg.runtime.output_dir))
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    restore_sigint()  # from here Lightning (or the except below) turns Ctrl-C into the resume line
    try:
        _run_task(cfg, hydra_cfg, run, multirun)
    except OSError as err:
        print(f"error: {fault_sentence(err, resume_command(hydra_cfg, multirun))}", file=sys.stderr)
        sys.exit(FAULT_EXIT)
    except KeyboardInterrupt:
        print(f"Interrupted before training finished. Resume with: {resume_command(hydra_cfg, multirun)}",
              file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT)


def _run_task(cfg: DictConfig, hydra_cfg: DictConfig, run: RunDir, multirun: bool) -> None:
    ensure_report_job(hydra_cfg, multirun)  # SLURM sweeps: the report is written even if the submitter is gone
    try:
        from sae_lab.training.run_state import check_same_experiment

        checked = validate(cfg)
        if checked.d_sae_over_erank is not None:  # a resumed run keeps the d_sae it resolved the first time
            from sae_lab.training.erank_sizing import adopt_recorded_d_sae

            adopt_recorded_d_sae(run, checked)
        check_same_experiment(run, checked)  # before the record below could overwrite another run's
    except ConfigError as err:
        if not multirun:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        if run.config.is_file():  # another experiment's dir: leave it exactly as it was
            FAILED_JOBS.add(str(run.root.resolve()))
            print(f"error: {err}", file=sys.stderr)
        else:
            write_hydra_record(run, cfg, hydra_cfg)
            fail_job(run, str(err))
        return
    from sae_lab.training.run_state import finished_rows, format_final

    done = finished_rows(run, checked)
    if done is not None:  # nothing to do, and nothing of it rewritten
        print(f"{run.root} already finished its {checked.budget.epochs} epochs. Its final metrics:\n"
              f"{format_final(done)}")
        return
    write_hydra_record(run, cfg, hydra_cfg)
    record_slurm_job(run)  # SLURM only: slurm.json, which job (and restart) trained this run
    print(f"Run dir: {run.root}", flush=True)
    _train(cfg, run, hydra_cfg, multirun)


def _train(cfg: DictConfig, run: RunDir, hydra_cfg: DictConfig, multirun: bool) -> None:
    from sae_lab.sae.module import NonFiniteLossError
    from sae_lab.training.callbacks.preemption import RunPreempted
    from sae_lab.training.loop import train
    from sae_lab.training.run_state import RunInterrupted, format_final

    try:
        last = train(cfg, run.root, in_sweep=multirun)
    except RunInterrupted as stop:
        print(f"{stop} Resume with: {resume_command(hydra_cfg, multirun)}", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT)
    except RunPreempted as stop:  # the whole sweep process stops, as the signal asked; 128 + N like the shell
        print(f"{stop} Resume with: {resume_command(hydra_cfg, multirun)}", file=sys.stderr)
        sys.exit(128 + stop.signum)
    except (ConfigError, NonFiniteLossError) as err:
        if not multirun:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        fail_job(run, str(err))
        return
    except OSError:
        raise  # the machine's fault, not the job's: run_task stops with one sentence
    except Exception as err:  # noqa: BLE001 - in a sweep, a crash fails its job, not the others
        if not multirun:
            raise
        fail_job(run, f"{type(err).__name__}: {err}".splitlines()[0], traceback.format_exc())
        return
    print(f"Final metrics (eval set) — run dir: {run.root}\n{format_final(last)}")
