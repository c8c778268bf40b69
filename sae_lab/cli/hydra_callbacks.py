"""Hydra callback: after a multirun, write the cross-seed report of its sweep dir and print its headline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepReport(Callback):
    def __init__(self, enabled: bool = True, resamples: int = 5000) -> None:
        self.enabled = enabled
        self.resamples = resamples

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.enabled:
            return
        from sae_lab.analysis.build import build_report

        sweep_dir = Path(config.hydra.sweep.dir)
        record_failed_jobs(sweep_dir)
        try:
            summary = build_report(sweep_dir, n_resamples=self.resamples)
        except Exception as err:  # noqa: BLE001 - the runs are safe on disk; say how to retry
            print(f"The sweep finished but its report failed ({type(err).__name__}: {err}); "
                  f"rerun it with: python -m sae_lab.cli.report {sweep_dir}")
            return
        print(summary.with_name("headline.txt").read_text(), end="")  # the long tables stay in summary.md
        print(f"Report: {summary.parent}")


def record_failed_jobs(sweep_dir: Path) -> None:
    """Jobs that failed in other processes (submitit, SLURM) count for the sweep's exit code too."""
    from sae_lab.analysis.runs import find_run_dirs
    from sae_lab.artifacts import RunDir
    from sae_lab.cli.job import FAILED_JOBS

    FAILED_JOBS.update(str(p.resolve()) for p in find_run_dirs(sweep_dir) if RunDir(p).error_file.is_file())
