"""Find run dirs under any directory and read what each wrote; a failed, unfinished or damaged run is
recorded with its reason, never fatal."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sae_lab.analysis import checks
from sae_lab.artifacts import RunDir

# A run's status in runs.csv and summary.md. Only "ok" and "damaged" runs whose damage is limited to
# single snapshots or the export (RunRecord.usable) contribute numbers.
OK, DAMAGED, FAILED, MISSING_METRICS = "ok", "damaged", "failed", "missing metrics"
NOT_STARTED, NOT_EVALUATED, NO_SNAPSHOTS = "not started", "not evaluated", "no snapshots"


class NoRunDirsError(ValueError):
    """The directory holds no run dir: there is nothing to report."""


@dataclass
class RunRecord:
    run: RunDir
    config: dict | None = None
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)  # metrics.csv, typed
    resampling: pd.DataFrame = field(default_factory=pd.DataFrame)  # resampling.csv, typed (empty if none)
    seeds: list[int] = field(default_factory=list)  # seeds with at least one readable snapshot
    epochs: dict[int, list[int]] = field(default_factory=dict)  # seed -> readable snapshot epochs
    status: str = OK
    problems: list[str] = field(default_factory=list)
    usable: bool = False  # its numbers go into its condition

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def error(self) -> str | None:
        return "; ".join(self.problems) or None


def _is_run_dir(path: Path) -> bool:
    run = RunDir(path)
    # error.txt alone marks a job that failed before it wrote anything else
    return any(p.is_file() for p in (run.config, path / ".hydra" / "config.yaml", run.metrics_csv, run.error_file))


# Directories the search never enters: hidden ones (.git, .venv, .hydra), report folders (also the temporary
# ones a report is built in), and installed software, which can hold files named config.yaml.
_SKIP_NAMES = {"report", "site-packages", "dist-packages", "node_modules", "__pycache__"}


def _skipped(path: Path) -> bool:
    return path.name.startswith(".") or path.name in _SKIP_NAMES or (path / "pyvenv.cfg").is_file()


def find_run_dirs(root: Path) -> list[Path]:
    """Run dirs at or under `root`, not descending into a run dir, a hidden directory, a report folder, a
    virtual environment or installed packages."""
    root = Path(root)
    if _is_run_dir(root):
        return [root]
    found = []
    for here, dirs, _ in os.walk(root):
        keep = []
        for name in sorted(dirs):
            path = Path(here) / name
            if _skipped(path):
                continue
            if _is_run_dir(path):
                found.append(path)
            else:
                keep.append(name)
        dirs[:] = keep  # os.walk descends only into these
    return sorted(found)


def sweep_dirs(runs: list[Path]) -> list[Path]:
    """The sweep dirs the run dirs belong to: the nearest parent holding Hydra's multirun.yaml, else the parent."""
    out = set()
    for run in runs:
        out.add(next((p for p in run.parents if (p / "multirun.yaml").is_file()), run.parent))
    return sorted(out)


def _stop(record: RunRecord, status: str, problem: str) -> RunRecord:
    record.status, record.problems, record.usable = status, [problem], False
    return record


def _load(record: RunRecord) -> RunRecord:
    run = record.run
    reason = checks.error_reason(run)
    if reason is not None:  # a failed job's numbers are partial: listed, not mixed into its condition
        return _stop(record, FAILED, reason)
    if not run.config.is_file():
        return _stop(record, NOT_STARTED, "no config.yaml: the run stopped before training started")
    record.config, problem = checks.read_config(run)
    if problem:
        return _stop(record, DAMAGED, problem)
    seeds, problem = checks.snapshot_seeds(run)
    if problem:
        return _stop(record, DAMAGED, problem)
    if not run.metrics_csv.is_file():
        if seeds:
            return _stop(record, MISSING_METRICS, "metrics.csv is missing, though config.yaml and snapshots exist")
        return _stop(record, NOT_EVALUATED, "no metrics.csv and no snapshots: the run stopped (or is still "
                                            "running) before its first eval")
    metrics, problem = checks.read_metrics(run)
    if problem:
        return _stop(record, DAMAGED, problem)
    resampling, problem = checks.read_resampling(run)
    if problem:
        return _stop(record, DAMAGED, problem)
    record.metrics, record.resampling = metrics, resampling
    if not seeds:
        return _stop(record, NO_SNAPSHOTS, "no snapshots/: the run has metrics but no decoder snapshots")
    d_sae = record.config.get("d_sae")
    record.epochs, bad = checks.readable_epochs(run, seeds, d_sae if isinstance(d_sae, int) else None)
    record.seeds = [s for s in seeds if record.epochs[s]]
    record.problems = bad + checks.export_problems(run, seeds)
    record.status = DAMAGED if record.problems else OK
    record.usable = bool(record.seeds)
    return record


def load_run(path: Path) -> RunRecord:
    record = RunRecord(RunDir(path))
    try:
        return _load(record)
    except Exception as err:  # noqa: BLE001 - anything unforeseen (permissions, races) lists the run, not stops
        return _stop(record, DAMAGED, f"the run dir could not be read ({type(err).__name__}: {err})")


def load_runs(root: Path) -> list[RunRecord]:
    """Every run dir under `root`, read; NoRunDirsError when there is none."""
    paths = find_run_dirs(root)
    if not paths:
        raise NoRunDirsError(f"no run dirs found in {root}: a run dir holds config.yaml, .hydra/config.yaml, "
                             "metrics.csv or error.txt.")
    return [load_run(p) for p in paths]
