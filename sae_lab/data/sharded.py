"""Reading a cache entry: `ShardedActivations`, a memory map over its safetensors shards that gathers
rows by index without reading the rest, and `materialize`, which turns it into an in-memory tensor
when it fits a memory budget. Mapped pages are kept bounded by watching this process's resident
file-backed memory (/proc/self/statm) and dropping them past a limit.
"""

from __future__ import annotations

import json
import mmap
import struct
from pathlib import Path
from typing import Any

import torch

from sae_lab.data.cache_format import SAFETENSORS_DTYPES, STORAGE_DTYPES, TENSOR_NAME, read_meta

# Caches whose float32 size is at most this are loaded into memory (a tensor, as before sharding).
DEFAULT_MEMORY_BUDGET = 2 << 30
_PAGE_SIZE = mmap.PAGESIZE


def _safetensors_layout(path: Path) -> tuple[int, torch.dtype, tuple[int, int]]:
    """(byte offset of the data, dtype, shape) of the one tensor in a shard, from its header."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 1 << 20:
                raise ValueError
            header = json.loads(f.read(n))
        info = header.get(TENSOR_NAME)
    except (struct.error, ValueError, AttributeError):
        raise ValueError(f"{path} has no valid safetensors header (corrupt)") from None
    if info is None or info.get("dtype") not in SAFETENSORS_DTYPES or len(info.get("shape", ())) != 2:
        raise ValueError(f"{path} does not hold a 2-D '{TENSOR_NAME}' tensor (corrupt)")
    return 8 + n + int(info["data_offsets"][0]), SAFETENSORS_DTYPES[info["dtype"]], tuple(info["shape"])


class _Shard:
    """One memory-mapped shard file; mapped on first use, pages dropped by `release`."""

    def __init__(self, path: Path, rows: int, d: int, dtype: torch.dtype, offset: int) -> None:
        self.path, self.rows, self.d, self.dtype, self.offset = path, rows, d, dtype, offset
        self._mm: mmap.mmap | None = None
        self._tensor: torch.Tensor | None = None

    @property
    def data_bytes(self) -> int:
        return self.rows * self.d * self.dtype.itemsize

    def tensor(self) -> torch.Tensor:
        """[rows, d] in the storage dtype, backed by the file (ACCESS_COPY: private and never written,
        so torch sees a writable buffer without copying it)."""
        if self._tensor is None:
            with open(self.path, "rb") as f:
                self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
            self._tensor = torch.frombuffer(self._mm, dtype=self.dtype, count=self.rows * self.d,
                                            offset=self.offset).view(self.rows, self.d)
        return self._tensor

    def release(self) -> None:
        """Drop the mapping's resident pages (they stay in the OS page cache) to bound the RSS."""
        if self._mm is not None and hasattr(mmap, "MADV_DONTNEED"):
            self._mm.madvise(mmap.MADV_DONTNEED)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_mm": None, "_tensor": None}


def _resident_file_bytes() -> int | None:
    """This process's resident file-backed and shared memory (Linux /proc/self/statm), else None."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[2]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


class ShardedActivations:
    """A read-only [N, d_model] activation cache on disk, indexed like a tensor without loading it.

    `x[index]` (a 1-D index tensor / list / array, a slice, or an int) returns a float32 tensor on
    `device` holding exactly the rows `to_tensor()[index]` would: indices are sorted and grouped by
    shard for locality, gathered from the memory-mapped shards, and put back in the requested order.

    Mapped pages count toward the process's RSS (as RssFile) although the kernel can drop them at
    will, and one fault can map far more than the row it reads (up to a 2 MiB folio). To keep the RSS
    bounded anyway, after reading from each shard the process's resident file-backed memory
    (/proc/self/statm) is compared with its level after the last release; once it grew by more than
    `max_resident_bytes`, every shard's pages are dropped (madvise DONTNEED; they stay in the OS page
    cache). So at most about `max_resident_bytes` plus one shard is mapped at any time. None: never
    drop (fastest; the kernel still reclaims under pressure). Without /proc, pages are dropped after
    every shard read.
    """

    def __init__(self, entry: Path, shards: list[_Shard], device: str | torch.device = "cpu",
                 max_resident_bytes: int | None = DEFAULT_MEMORY_BUDGET) -> None:
        if not shards:
            raise ValueError(f"{entry} has no shards")
        self.entry = Path(entry)
        self._shards = shards
        self._d = shards[0].d
        self._dtype = shards[0].dtype
        if any(s.d != self._d or s.dtype != self._dtype for s in shards):
            raise ValueError(f"{entry}: shards disagree on d_model or dtype (corrupt)")
        self._starts = torch.tensor([0, *torch.tensor([s.rows for s in shards]).cumsum(0).tolist()])
        self.device = torch.device(device)
        self.max_resident_bytes = max_resident_bytes
        self._resident_base = _resident_file_bytes()  # resident file-backed bytes after the last release

    @classmethod
    def open(cls, entry: Path, device: str | torch.device = "cpu",
             max_resident_bytes: int | None = DEFAULT_MEMORY_BUDGET) -> ShardedActivations:
        """The cache in `entry` as listed by its meta.json (checked against each shard's header;
        call `verify` first for checksums). Raises ValueError/OSError for a broken entry."""
        entry = Path(entry)
        meta = read_meta(entry)
        expected_dtype = STORAGE_DTYPES[meta["dtype"]]
        shards = []
        for s in meta["shards"]:
            path = entry / s["file"]
            offset, dtype, shape = _safetensors_layout(path)
            if dtype != expected_dtype or list(shape) != list(s["shape"]):
                raise ValueError(f"{path} holds {dtype} {list(shape)}, meta.json says "
                                 f"{expected_dtype} {s['shape']} (corrupt)")
            if offset % dtype.itemsize or offset + shape[0] * shape[1] * dtype.itemsize > path.stat().st_size:
                raise ValueError(f"{path} is truncated or misaligned (corrupt)")
            shards.append(_Shard(path, shape[0], shape[1], dtype, offset))
        acts = cls(entry, shards, device=device, max_resident_bytes=max_resident_bytes)
        if list(acts.shape) != list(meta["shape"]):
            raise ValueError(f"{entry}: shards hold {list(acts.shape)}, meta.json says {meta['shape']}")
        return acts

    # -- tensor-like metadata
    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def shape(self) -> torch.Size:
        return torch.Size([len(self), self._d])

    @property
    def d_model(self) -> int:
        return self._d

    @property
    def dtype(self) -> torch.dtype:
        """The storage dtype; indexing always returns float32."""
        return self._dtype

    @property
    def nbytes(self) -> int:
        """Bytes of activation data on disk."""
        return sum(s.data_bytes for s in self._shards)

    @property
    def n_shards(self) -> int:
        return len(self._shards)

    def __repr__(self) -> str:
        return (f"ShardedActivations({self.entry}, shape={tuple(self.shape)}, dtype={self._dtype}, "
                f"shards={self.n_shards}, device={self.device})")

    def to(self, device: str | torch.device) -> ShardedActivations:
        """The same cache, with indexing results placed on `device` (the data stays on disk)."""
        return self if torch.device(device) == self.device else self.view(device, self.max_resident_bytes)

    def view(self, device: str | torch.device, max_resident_bytes: int | None) -> ShardedActivations:
        """A new handle on the same shards (sharing their mappings) with other options."""
        return ShardedActivations(self.entry, self._shards, device=device, max_resident_bytes=max_resident_bytes)

    # -- reading
    def to_tensor(self) -> torch.Tensor:
        """The whole cache as one float32 tensor on `device` (for caches that fit in memory): filled
        shard by shard, each shard's pages released after its copy."""
        out = torch.empty(tuple(self.shape), dtype=torch.float32)
        for shard, start in zip(self._shards, self._starts.tolist(), strict=False):
            out[start:start + shard.rows].copy_(shard.tensor())
            shard.release()
        return out.to(self.device)

    def __getitem__(self, index: Any) -> torch.Tensor:
        n = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step == 1:
                return self._read_range(start, max(start, stop))
            index = torch.arange(start, stop, step)
        idx = torch.as_tensor(index)
        if idx.dtype == torch.bool or idx.is_floating_point() or idx.is_complex() or idx.dim() > 1:
            raise TypeError("ShardedActivations takes an int, a slice or a 1-D integer index")
        if idx.dim() == 0:  # one row
            i = int(idx)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for {n} rows")
            return self._gather(torch.tensor([i % n]))[0]
        return self._gather(idx.to("cpu", torch.int64))

    def _read_range(self, start: int, stop: int) -> torch.Tensor:
        out = torch.empty((stop - start, self._d), dtype=torch.float32)
        first = max(int(torch.searchsorted(self._starts, torch.tensor(start), right=True)) - 1, 0)
        for s in range(first, len(self._shards)):
            lo = int(self._starts[s])
            if lo >= stop:
                break
            a, b = max(start, lo) - lo, min(stop, int(self._starts[s + 1])) - lo
            out[lo + a - start:lo + b - start].copy_(self._shards[s].tensor()[a:b])
            self._bound_resident()
        return out.to(self.device)

    def _gather(self, idx: torch.Tensor) -> torch.Tensor:
        n = len(self)
        if len(idx) and (int(idx.min()) < -n or int(idx.max()) >= n):
            raise IndexError(f"index out of bounds for {n} rows")
        idx = torch.where(idx < 0, idx + n, idx)
        order = torch.argsort(idx)
        sorted_idx = idx[order]
        shard_of = torch.searchsorted(self._starts, sorted_idx, right=True) - 1
        ids, counts = torch.unique_consecutive(shard_of, return_counts=True)
        out = torch.empty((len(idx), self._d), dtype=torch.float32)
        pos = 0
        for s, c in zip(ids.tolist(), counts.tolist(), strict=True):
            rows = sorted_idx[pos:pos + c] - self._starts[s]
            out.index_copy_(0, order[pos:pos + c], self._shards[s].tensor().index_select(0, rows).float())
            self._bound_resident()
            pos += c
        return out.to(self.device)

    def _bound_resident(self) -> None:
        if self.max_resident_bytes is None:
            return
        now = _resident_file_bytes()
        if now is None or self._resident_base is None or now - self._resident_base > self.max_resident_bytes:
            self.release()

    def release(self) -> None:
        """Drop all mapped pages (the data stays on disk and, usually, in the OS page cache)."""
        for shard in self._shards:
            shard.release()
        self._resident_base = _resident_file_bytes()


def materialize(data: torch.Tensor | ShardedActivations, device: str | torch.device = "cpu",
                memory_budget: int | None = DEFAULT_MEMORY_BUDGET) -> torch.Tensor | ShardedActivations:
    """`data` on `device`: a tensor when it is one or when its float32 size fits `memory_budget`
    (None: no limit), else the memory map with indexing results on `device` and at most about
    `memory_budget` bytes of it resident."""
    if isinstance(data, torch.Tensor):
        return data.to(device)
    if memory_budget is None or len(data) * data.d_model * 4 <= memory_budget:
        return data.to(device).to_tensor()
    return data.view(device, memory_budget)
