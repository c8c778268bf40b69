"""Find run dirs under any directory and read what each wrote; a broken run is recorded, never fatal."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from sae_lab.artifacts import RunDir


@dataclass
class RunRecord:
    run: RunDir
    config: dict | None = None
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)  # metrics.csv, typed
    resampling: pd.DataFrame = field(default_factory=pd.DataFrame)  # resampling.csv, typed (empty if none)
    seeds: list[int] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _is_run_dir(path: Path) -> bool:
    run = RunDir(path)
    return run.config.is_file() or (path / ".hydra" / "config.yaml").is_file() or run.metrics_csv.is_file()


def find_run_dirs(root: Path) -> list[Path]:
    root = Path(root)
    found = [root] if _is_run_dir(root) else []
    for path in sorted(root.rglob("*")):
        if path.is_dir() and "report" not in path.relative_to(root).parts[:1] and _is_run_dir(path) \
                and not any(parent in found for parent in path.parents):
            found.append(path)
    return found


def _read(record: RunRecord, name: str, read):
    """`read()`, or None with record.error naming the unreadable file (any failure counts the same)."""
    try:
        return read()
    except Exception as err:  # noqa: BLE001
        record.error = f"{name} is unreadable ({type(err).__name__})"
        return None


def load_run(path: Path) -> RunRecord:
    record = RunRecord(RunDir(path))
    run = record.run
    if not run.config.is_file():
        record.error = "no config.yaml: the run stopped before training started"
        return record
    record.config = _read(record, "config.yaml", lambda: OmegaConf.to_container(OmegaConf.load(run.config),
                                                                                  resolve=True))
    if record.error:
        return record
    if not run.metrics_csv.is_file():
        record.error = "no metrics.csv: the run failed before its first eval"
        return record
    metrics = _read(record, "metrics.csv", run.metrics_table)
    if record.error:
        return record
    record.metrics = metrics
    if not {"epoch", "seed"} <= set(record.metrics.columns):
        record.error = "metrics.csv has no epoch and seed columns"
        return record
    resampling = _read(record, "resampling.csv", run.resampling_table)
    if record.error:
        return record
    record.resampling = resampling
    record.seeds = run.seeds()
    if not record.seeds:
        record.error = "no snapshots"
    return record


def load_runs(root: Path) -> list[RunRecord]:
    return [load_run(p) for p in find_run_dirs(root)]
