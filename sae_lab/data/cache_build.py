"""Writing a cache entry: `build` streams a model's activations into safetensors shards, holding one
shard (plus one input batch) in memory whatever the cache's size, and writes meta.json last.
`build_lock` makes concurrent processes build an entry once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from sae_lab.artifacts import (
    atomic_save_tensors,
    atomic_write_text,
    cache_data_files,
    cache_lock_file,
    cache_meta_file,
    cache_shard_file,
    cache_tensor_file,
)
from sae_lab.data.cache_format import FORMAT_VERSION, STORAGE_DTYPES, TENSOR_NAME, combined_sha256, file_sha256
from sae_lab.data.sharded import DEFAULT_MEMORY_BUDGET, ShardedActivations
from sae_lab.models.protocol import SubjectModel

log = logging.getLogger(__name__)
# Default shard size when `shard_size` is not given: this many bytes per shard.
DEFAULT_SHARD_BYTES = 256 << 20


def _input_batches(inputs: torch.Tensor | Iterable[torch.Tensor], batch_size: int) -> Iterator[torch.Tensor]:
    if isinstance(inputs, torch.Tensor):
        for start in range(0, len(inputs), batch_size):
            yield inputs[start:start + batch_size]
    else:
        yield from inputs


def _clear_entry(entry: Path) -> None:
    """Remove a previous build's files: meta.json first, so the entry is never complete-looking."""
    cache_meta_file(entry).unlink(missing_ok=True)
    for path in cache_data_files(entry):
        path.unlink(missing_ok=True)


class _ShardWriter:
    """Buffers up to `shard_size` rows in the storage dtype and writes each full shard atomically."""

    def __init__(self, entry: Path, dtype: torch.dtype, shard_size: int | None) -> None:
        self.entry, self.dtype, self.shard_size = entry, dtype, shard_size
        self.buffer: torch.Tensor | None = None
        self.fill = 0
        self.shards: list[dict[str, Any]] = []

    def add(self, acts: torch.Tensor) -> None:
        if self.buffer is None:
            d = acts.shape[1]
            if self.shard_size is None:
                self.shard_size = max(1, DEFAULT_SHARD_BYTES // (d * self.dtype.itemsize))
            self.buffer = torch.empty((self.shard_size, d), dtype=self.dtype)
        elif acts.shape[1] != self.buffer.shape[1]:
            raise ValueError(f"activations changed width from {self.buffer.shape[1]} to {acts.shape[1]}")
        done = 0
        while done < len(acts):
            k = min(len(acts) - done, self.shard_size - self.fill)
            self.buffer[self.fill:self.fill + k].copy_(acts[done:done + k])  # converts dtype/device
            self.fill += k
            done += k
            if self.fill == self.shard_size:
                self.flush()

    def flush(self) -> None:
        if not self.fill:
            return
        path = cache_shard_file(self.entry, len(self.shards))
        atomic_save_tensors(path, {TENSOR_NAME: self.buffer[:self.fill]})
        self.shards.append({"file": path.name, "shape": [self.fill, self.buffer.shape[1]],
                            "bytes": path.stat().st_size, "sha256": file_sha256(path)})
        self.fill = 0


def build(model: SubjectModel, hook: str, inputs: torch.Tensor | Iterable[torch.Tensor], entry: Path,
          spec: dict[str, Any], batch_size: int = 4096, *, dtype: str | None = None,
          max_vectors: int | None = None, shard_size: int | None = None, progress: bool = True,
          device: str | torch.device = "cpu",
          max_resident_bytes: int | None = DEFAULT_MEMORY_BUDGET) -> ShardedActivations:
    """Stream `model.activations(batch, hook)` over `inputs` into shards in `entry`.

    `inputs`: a tensor (cut into `batch_size` rows) or an iterable of input batches (consumed lazily,
    may be endless with `max_vectors`). At most one shard (`shard_size` vectors; default about
    256 MiB) plus one batch is in memory. `max_vectors` stops the stream once that many vectors are
    cached (exactly that many kept). `dtype` ("float32" or "bfloat16") and `max_vectors` default to
    the spec's. meta.json is written last, so an interrupted build leaves an incomplete entry; any
    previous build's files are removed first."""
    dtype = dtype or spec.get("dtype", "float32")
    max_vectors = spec.get("max_vectors") if max_vectors is None else max_vectors
    if max_vectors is not None and max_vectors <= 0:
        raise ValueError(f"max_vectors must be positive, not {max_vectors}")
    entry = Path(entry)
    entry.mkdir(parents=True, exist_ok=True)
    _clear_entry(entry)
    writer = _ShardWriter(entry, STORAGE_DTYPES[dtype], shard_size)
    kept = 0
    with tqdm(total=max_vectors, desc=f"caching {hook}", unit="vec", unit_scale=True, leave=False,
              disable=not progress) as bar:
        for batch in _input_batches(inputs, batch_size):
            with torch.no_grad():
                acts = model.activations(batch, hook)
            if acts.dim() != 2:
                raise ValueError(f"activations must be [N, d_model], got {tuple(acts.shape)}")
            if max_vectors is not None:
                acts = acts[:max_vectors - kept]
            writer.add(acts.detach())
            kept += len(acts)
            bar.update(len(acts))
            bar.set_postfix(shards=len(writer.shards), refresh=False)
            del acts
            if max_vectors is not None and kept >= max_vectors:
                break
    writer.flush()
    writer.buffer = None
    if not kept:
        raise ValueError(f"no activations to cache at {hook}: the inputs are empty")
    if max_vectors is not None and kept < max_vectors:
        log.warning("The inputs ran out after %d of max_vectors=%d activation vectors.", kept, max_vectors)
    shards = writer.shards
    if len(shards) == 1:  # a one-shard cache is a single file, as before sharding
        os.replace(entry / shards[0]["file"], cache_tensor_file(entry))
        shards[0]["file"] = cache_tensor_file(entry).name
    meta = {"format": FORMAT_VERSION, "spec": spec, "shape": [kept, shards[0]["shape"][1]], "dtype": dtype,
            "shard_size": writer.shard_size, "shards": shards,
            "sha256": combined_sha256(s["sha256"] for s in shards)}
    atomic_write_text(cache_meta_file(entry), json.dumps(meta, indent=2) + "\n")
    return ShardedActivations.open(entry, device=device, max_resident_bytes=max_resident_bytes)


@contextlib.contextmanager
def build_lock(entry: Path) -> Iterator[None]:
    """Exclusive lock on `entry` for building it (a no-op where flock is unavailable)."""
    entry.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    with open(cache_lock_file(entry), "a+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"Waiting for another process to finish building activation cache {entry}.")
            fcntl.flock(f, fcntl.LOCK_EX)
        except OSError as err:  # e.g. a file system without locks
            log.warning("Cannot lock %s (%s); building without a lock.", entry, err)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(f, fcntl.LOCK_UN)
