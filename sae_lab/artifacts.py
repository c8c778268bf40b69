"""The one place that knows the run-dir layout: every path a run writes or reads is built here.

    run_dir/
      .hydra/config.yaml                     resolved config (written by Hydra)
      config.yaml                            resolved config (written by sae_lab, also for non-Hydra runs)
      metrics.csv                            one row per eval epoch per member
      resampling.csv                         dead-feature resampling events (when enabled)
      snapshots/seed{S}/epoch{E}.safetensors decoder [d_sae, d_model] and firing counts [d_sae]
      checkpoints/last.ckpt                  Lightning checkpoint for resuming
      sae/seed{S}/cfg.json                   SAELens-layout export of each member
      sae/seed{S}/sae_weights.safetensors
      logs/                                  logger output (csv / tensorboard / wandb)
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file and rename, so a crash never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_save_tensors(path: Path, tensors: Mapping[str, torch.Tensor],
                        metadata: dict[str, str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv(path: Path, rows: Iterable[Mapping[str, object]]) -> None:
    """Write rows (dicts) as CSV atomically; the header is the union of keys in first-seen order."""
    rows = list(rows)
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@dataclass(frozen=True)
class RunDir:
    """Paths of one run directory. Construct with the directory Hydra (or the caller) chose."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics_csv(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def resampling_csv(self) -> Path:
        """One row per dead-feature resampling event per member."""
        return self.root / "resampling.csv"

    def read_resampling(self) -> list[dict[str, str]]:
        return read_csv(self.resampling_csv) if self.resampling_csv.is_file() else []

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints_dir / "last.ckpt"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def snapshot_dir(self, seed: int) -> Path:
        return self.root / "snapshots" / f"seed{seed}"

    def snapshot(self, seed: int, epoch: int) -> Path:
        return self.snapshot_dir(seed) / f"epoch{epoch}.safetensors"

    def snapshot_epochs(self, seed: int) -> list[int]:
        d = self.snapshot_dir(seed)
        if not d.is_dir():
            return []
        return sorted(int(p.stem.removeprefix("epoch")) for p in d.glob("epoch*.safetensors"))

    def seeds(self) -> list[int]:
        d = self.root / "snapshots"
        if not d.is_dir():
            return []
        return sorted(int(p.name.removeprefix("seed")) for p in d.glob("seed*") if p.is_dir())

    def sae_dir(self, seed: int) -> Path:
        return self.root / "sae" / f"seed{seed}"

    def sae_cfg(self, seed: int) -> Path:
        return self.sae_dir(seed) / "cfg.json"

    def sae_weights(self, seed: int) -> Path:
        return self.sae_dir(seed) / "sae_weights.safetensors"

    # Readers used by notebooks and the report.
    def read_metrics(self) -> list[dict[str, str]]:
        return read_csv(self.metrics_csv)

    def read_snapshot(self, seed: int, epoch: int) -> dict[str, torch.Tensor]:
        return load_file(str(self.snapshot(seed, epoch)))


def cache_entry_dir(cache_dir: Path, key: str) -> Path:
    """Directory of one activation-cache entry (safetensors + meta.json)."""
    return Path(cache_dir) / key


def cache_tensor_file(entry: Path) -> Path:
    return entry / "activations.safetensors"


def cache_meta_file(entry: Path) -> Path:
    return entry / "meta.json"


def report_dir(root: Path) -> Path:
    """Where the sweep report of a directory of runs goes."""
    return Path(root) / "report"
