"""Run train.py as a user does (a subprocess from the repository root) or `train()` in-process on the smoke budget."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_train(*args: str, timeout: int = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python train.py ARGS` from the repo root, as a user runs it; `env` adds to (or overrides) the
    environment, e.g. WANDB_MODE=offline where a test reads W&B's files."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "disabled", **(env or {})}
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def train_smoke(tmp_path: Path, cache_dir: Path, name: str, *overrides: str, callbacks=None):
    """`sae_lab.training.loop.train` on the smoke budget in tmp_path/name; returns (RunDir, last rows)."""
    from hydra import compose, initialize_config_dir

    from sae_lab.artifacts import RunDir
    from sae_lab.config import CONF_DIR
    from sae_lab.training.loop import train

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["budget=smoke", "progress=false", f"cache_dir={cache_dir}", *overrides])
    last = train(cfg, tmp_path / name, callbacks=callbacks)
    return RunDir(tmp_path / name), last
