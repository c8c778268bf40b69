"""A real smoke run split into single-seed run dirs, for report tests that damage copies of them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sae_lab.artifacts import RunDir, write_csv
from tests.helpers.runs import train_smoke

SEEDS = (1, 2, 3)


def split_member(ensemble: RunDir, seed: int, dest: Path) -> RunDir:
    """The run dir that `seed=<seed>` alone would have written: one member's config, metrics rows,
    snapshots and export out of an ensemble run (the members train independently)."""
    run = RunDir(dest)
    cfg = yaml.safe_load(ensemble.config.read_text())
    cfg.update(seed=seed, ensemble=1)
    run.root.mkdir(parents=True)
    run.config.write_text(yaml.safe_dump(cfg))
    metrics = pd.read_csv(ensemble.metrics_csv, dtype=str, keep_default_na=False)
    write_csv(run.metrics_csv, metrics[metrics["seed"] == str(seed)].assign(member="0"))
    shutil.copytree(ensemble.snapshot_dir(seed), run.snapshot_dir(seed))
    shutil.copytree(ensemble.sae_dir(seed), run.sae_dir(seed))
    return run


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory, cache_dir) -> Path:
    """A dir of three clean single-seed smoke run dirs (seeds 1, 2, 3, epochs 0–2); copy before damaging."""
    base = tmp_path_factory.mktemp("smoke")
    ensemble, _ = train_smoke(base, cache_dir, "ensemble", f"ensemble={len(SEEDS)}", f"seed={SEEDS[0]}",
                              "d_sae=256", "behaviour.enabled=false")
    runs = base / "runs"
    for seed in SEEDS:
        split_member(ensemble, seed, runs / f"seed{seed}")
    return runs
