"""The one place that knows the run-dir layout: every path a run writes or reads is built here.

    run_dir/
      .hydra/{config,hydra,overrides}.yaml   Hydra's record of the job (written once its config is checked)
      config.yaml                            resolved config (written by sae_lab, also for non-Hydra runs)
      metrics.csv                            one row per eval epoch per member
      resampling.csv                         dead-feature resampling events (when enabled)
      snapshots/seed{S}/epoch{E}.safetensors decoder [d_sae, d_model] and firing counts [d_sae]
      checkpoints/last.ckpt                  Lightning checkpoint for resuming
      sae/seed{S}/cfg.json                   SAELens-layout export of each member
      sae/seed{S}/sae_weights.safetensors
      logs/                                  logger output (csv / tensorboard / wandb)
      logs/csv/[resumeN/]metrics.csv         Lightning's CSVLogger (train/loss by step), one file per attempt
      error.txt                              why the run failed (a sweep job that failed alone)
      slurm.json                             SLURM job / array ids of each attempt (runs under SLURM)
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

# Key columns of metrics.csv / resampling.csv, typed int64 by the table readers.
INT_COLUMNS = ("epoch", "step", "seed", "member")
RESAMPLING_COLUMNS = ("epoch", "step", "seed", "pool", "n_resampled", "n_features")
# pandas < 3 parses some floats off by an ulp unless asked to round-trip; 3.x is exact and deprecates the option.
_CSV_FLOAT = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
_UMASK_LOCK = threading.Lock()
_PROC_STATUS = Path("/proc/self/status")


def _umask() -> int:
    """The process umask. Linux reports it in /proc (no side effect); elsewhere set-and-restore under a lock."""
    try:
        for line in _PROC_STATUS.read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)  # restrictive for the instant it is set, in case another thread creates a file
        os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Have `write(tmp)` write a temp file in path's dir, fsync it, give it the umask's mode (mkstemp makes
    0600, which a group-shared cache could not read), and rename it onto `path`: a crash never leaves a
    half-written file, and on any failure the temp is removed and an existing `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        # Writers in other languages (safetensors) report a full disk as their own error type ("... (os error
        # 28)"): made an OSError naming the file, so the command line gives its one sentence.
        code = re.search(r"\(os error (\d+)\)", str(err)) if not isinstance(err, OSError) else None
        if code:
            raise OSError(int(code[1]), os.strerror(int(code[1])), str(path)) from err
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_save_tensors(path: Path, tensors: Mapping[str, torch.Tensor],
                        metadata: dict[str, str] | None = None) -> None:
    state = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata=metadata))


def write_csv(path: Path, rows: Iterable[Mapping[str, object]] | pd.DataFrame) -> None:
    """Write rows (dicts, or a DataFrame's records) as CSV atomically; the header is the union of keys in
    first-seen order. The csv module, not DataFrame.to_csv, so floats keep repr() and missing keys stay empty."""
    rows = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows)
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


def read_table(path: Path, int_columns: Iterable[str] = INT_COLUMNS) -> pd.DataFrame:
    """A CSV as a DataFrame: numeric columns float64 (missing cells NaN), `int_columns` present int64."""
    frame = pd.read_csv(path, **_CSV_FLOAT)
    present = [c for c in int_columns if c in frame.columns]
    return frame.astype(dict.fromkeys(present, "int64"))


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
    def error_file(self) -> Path:
        """One file saying why the run failed; written instead of ending the sweep it belongs to."""
        return self.root / "error.txt"

    @property
    def slurm_json(self) -> Path:
        """The SLURM job ids the run ran under, one entry per attempt (sae_lab.integrations.slurm)."""
        return self.root / "slurm.json"

    def hydra_file(self, name: str) -> Path:
        """Hydra's job record: `config.yaml` (the task config as composed), `hydra.yaml`, `overrides.yaml`."""
        return self.root / ".hydra" / name

    @property
    def resampling_csv(self) -> Path:
        """One row per dead-feature resampling event per member."""
        return self.root / "resampling.csv"

    def read_resampling(self) -> list[dict[str, str]]:
        return read_csv(self.resampling_csv) if self.resampling_csv.is_file() else []

    def resampling_table(self) -> pd.DataFrame:
        """resampling.csv typed (epoch, step, seed, n_resampled, n_features int64); empty when never resampled."""
        if not self.resampling_csv.is_file():
            return pd.DataFrame({c: pd.Series(dtype=str if c == "pool" else "int64") for c in RESAMPLING_COLUMNS})
        return read_table(self.resampling_csv, (*INT_COLUMNS, "n_resampled", "n_features"))

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints_dir / "last.ckpt"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def csv_log_files(self) -> list[Path]:
        """Lightning CSVLogger files under logs/csv, first attempt first (a resumed run logs to resumeN/)."""
        d = self.logs_dir / "csv"
        files = [d / "metrics.csv"] if (d / "metrics.csv").is_file() else []
        resumes = [p for p in d.glob("resume*/metrics.csv") if p.parent.name.removeprefix("resume").isdigit()]
        return files + sorted(resumes, key=lambda p: int(p.parent.name.removeprefix("resume")))

    def training_loss(self) -> pd.DataFrame:
        """The logged `train/loss` (mean over the run's members) by Lightning's step, [step, train_loss]; the
        loss after the n-th update is logged at step n − 1. Read from every
        attempt's CSV log, a later attempt's value replacing an earlier one's at the same step (a resumed
        run repeats the steps after its checkpoint). Empty when no CSV log recorded it."""
        frames = []
        for path in self.csv_log_files():
            try:
                table = pd.read_csv(path)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
                continue  # a log cut short by a kill: the other attempts still count
            if {"step", "train/loss"} <= set(table.columns):
                frames.append(table[["step", "train/loss"]].dropna())
        if not frames:
            return pd.DataFrame({"step": pd.Series(dtype="int64"), "train_loss": pd.Series(dtype="float64")})
        merged = pd.concat(frames).drop_duplicates("step", keep="last").sort_values("step")
        return pd.DataFrame({"step": merged["step"].astype("int64").to_numpy(),
                             "train_loss": merged["train/loss"].astype("float64").to_numpy()})

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
        """metrics.csv rows as raw strings: EvalCallback reloads and rewrites them on resume, and strings
        round-trip byte for byte. Use metrics_table() for typed values."""
        return read_csv(self.metrics_csv)

    def metrics_table(self) -> pd.DataFrame:
        """metrics.csv typed: epoch, step, seed, member int64; metric columns float64 with NaN where missing."""
        return read_table(self.metrics_csv)

    def read_snapshot(self, seed: int, epoch: int) -> dict[str, torch.Tensor]:
        return load_file(str(self.snapshot(seed, epoch)))


def cache_entry_dir(cache_dir: Path, key: str) -> Path:
    """Directory of one activation-cache entry (safetensors + meta.json)."""
    return Path(cache_dir) / key


def cache_tensor_file(entry: Path) -> Path:
    return entry / "activations.safetensors"


def cache_meta_file(entry: Path) -> Path:
    return entry / "meta.json"


def cache_shard_file(entry: Path, index: int) -> Path:
    """Shard `index` of a cache entry stored in several shards."""
    return Path(entry) / f"activations-{index:05d}.safetensors"


def cache_lock_file(entry: Path) -> Path:
    """Held (flock) while a process builds the entry, so concurrent runs build it once."""
    return Path(entry) / ".build.lock"


def cache_data_files(entry: Path) -> list[Path]:
    """Every activation file in `entry`, including temp files of an interrupted write."""
    entry = Path(entry)
    if not entry.is_dir():
        return []
    return sorted({*entry.glob("activations*.safetensors"), *entry.glob(".activations*.tmp"),
                   *entry.glob(".meta.json.*.tmp")})


def report_dir(root: Path) -> Path:
    """Where the sweep report of a directory of runs goes."""
    return Path(root) / "report"
