"""Activation cache: built once per (model, hook, data spec, token count, positions, storage dtype),
keyed by a hash of those, stored as safetensors shards + meta.json with checksums, verified on load.

Every seed and architecture of a sweep reads the same entry; a stale, corrupt or half-built entry is
rebuilt with a message saying why.

This module holds the spec, key and `verify`, and the entry points (`load_or_build`,
`subject_activations`). The entry's file format is in `cache_format`, writing (`build`) in
`cache_build`, reading (`ShardedActivations`, `materialize`) in `sharded`; their public names are
re-exported here.

Loading returns an in-memory float32 tensor when the cache fits `memory_budget`, else a
`ShardedActivations`: a memory map that gathers rows by index without reading the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from sae_lab.artifacts import (
    cache_data_files,
    cache_entry_dir,
    cache_lock_file,
    cache_meta_file,
    cache_shard_file,
)
from sae_lab.data.cache_build import DEFAULT_SHARD_BYTES, build, build_lock
from sae_lab.data.cache_format import FORMAT_VERSION, STORAGE_DTYPES, file_sha256, read_meta
from sae_lab.data.sharded import DEFAULT_MEMORY_BUDGET, ShardedActivations, materialize
from sae_lab.models.protocol import SubjectModel

__all__ = ["DEFAULT_MEMORY_BUDGET", "DEFAULT_SHARD_BYTES", "FORMAT_VERSION", "FULL_HASH_MAX_BYTES",
           "STORAGE_DTYPES", "ShardedActivations", "build", "cache_data_files", "cache_key",
           "cache_lock_file", "cache_shard_file", "cache_spec", "file_sha256", "load_or_build",
           "materialize", "subject_activations", "verify"]

# Caches up to this many stored bytes are fully re-hashed on load; bigger ones get size + header checks.
FULL_HASH_MAX_BYTES = 16 << 30


# ---------------------------------------------------------------------------------------------
# Spec, key, verification


def cache_spec(model: SubjectModel, hook: str, data: dict[str, Any], n_tokens: int | None,
               dtype: str = "float32", max_vectors: int | None = None) -> dict[str, Any]:
    """Everything the cached activations depend on; its hash is the cache key.

    `n_tokens` is the number of inputs (None for a stream of batches, which `data` must describe),
    `dtype` the storage dtype, `max_vectors` the cap on cached vectors (None: all)."""
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(STORAGE_DTYPES)}, not {dtype!r}")
    return {"format": FORMAT_VERSION, "model": model.name, "weights": model.fingerprint(), "hook": hook,
            "data": data, "n_tokens": None if n_tokens is None else int(n_tokens), "dtype": dtype,
            "max_vectors": None if max_vectors is None else int(max_vectors)}


def cache_key(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


def verify(entry: Path, spec: dict[str, Any], full_hash_max_bytes: int | None = FULL_HASH_MAX_BYTES
           ) -> str | None:
    """None if the entry is complete and intact, else the reason it is not.

    Always checks meta.json (present, readable, same spec) and that every listed shard exists with
    its recorded size. Re-hashes every shard (sha256, streamed in 1 MiB chunks, so nothing is held
    in RAM) when the entry's stored bytes are at most `full_hash_max_bytes` (None: always); above
    that, only sizes are checked here and `ShardedActivations.open` checks each shard's header."""
    entry = Path(entry)
    meta_path = cache_meta_file(entry)
    if not meta_path.is_file():
        return "it is incomplete"
    try:
        meta = read_meta(entry)
    except (OSError, ValueError):
        return f"{meta_path} is unreadable"
    if meta.get("spec") != spec:
        return "it was built for a different spec (stale)"
    shards = meta.get("shards")
    try:
        files = [(entry / s["file"], int(s["bytes"]), str(s["sha256"])) for s in shards]
    except (TypeError, KeyError, ValueError):
        files = []
    if not files:
        return f"{meta_path} lists no shards (unreadable)"
    for path, size, _ in files:
        if not path.is_file():
            return f"{path} is missing (incomplete)"
        if path.stat().st_size != size:
            return f"{path} has the wrong size (corrupt)"
    total = sum(size for _, size, _ in files)
    if full_hash_max_bytes is None or total <= full_hash_max_bytes:
        for path, _, digest in files:
            if file_sha256(path) != digest:
                return f"{path} fails its checksum (corrupt)"
    return None


def _open_intact(entry: Path, spec: dict[str, Any], full_hash_max_bytes: int | None,
                 max_resident_bytes: int | None) -> tuple[ShardedActivations | None, str | None]:
    """(the entry, None) when it is complete and intact, else (None, why not)."""
    problem = verify(entry, spec, full_hash_max_bytes=full_hash_max_bytes)
    if problem is not None:
        return None, problem
    try:
        return ShardedActivations.open(entry, max_resident_bytes=max_resident_bytes), None
    except (OSError, ValueError, KeyError) as err:
        return None, str(err)


# ---------------------------------------------------------------------------------------------
# Entry points


def subject_activations(model: SubjectModel, hook: str, cache_dir: Path,
                        **options: Any) -> torch.Tensor | ShardedActivations:
    """The cached activations of the subject's whole data set at `hook` (options: `load_or_build`'s)."""
    return load_or_build(model, hook, model.dataset(), model.data_spec(), cache_dir, **options)


def load_or_build(model: SubjectModel, hook: str, inputs: torch.Tensor | Iterable[torch.Tensor],
                  data: dict[str, Any], cache_dir: Path, *, dtype: str = "float32",
                  max_vectors: int | None = None, shard_size: int | None = None, batch_size: int = 4096,
                  memory_budget: int | None = DEFAULT_MEMORY_BUDGET,
                  full_hash_max_bytes: int | None = FULL_HASH_MAX_BYTES,
                  progress: bool = True) -> torch.Tensor | ShardedActivations:
    """Activations [N, d_model] for `inputs` at `hook`, from the cache when intact, else built.

    `inputs`: a tensor of inputs, or an iterable of input batches (then `data` must describe the
    stream, and it is only consumed on a cache miss). Returns a float32 CPU tensor when the cache's
    float32 size fits `memory_budget` (None: always), else a `ShardedActivations` memory map that
    keeps at most about `memory_budget` bytes resident. Concurrent callers (e.g. the jobs of a sweep)
    build a missing entry once: the others wait for it (flock on the entry's .build.lock)."""
    n_tokens = len(inputs) if isinstance(inputs, torch.Tensor) else None
    spec = cache_spec(model, hook, data, n_tokens, dtype=dtype, max_vectors=max_vectors)
    entry = cache_entry_dir(Path(cache_dir), cache_key(spec))
    acts, _ = _open_intact(entry, spec, full_hash_max_bytes, memory_budget)
    if acts is None:
        with build_lock(entry):
            # Checked again under the lock: another process may have built it meanwhile.
            acts, problem = _open_intact(entry, spec, full_hash_max_bytes, memory_budget)
            if acts is None:
                if cache_meta_file(entry).exists() or cache_data_files(entry):
                    print(f"Rebuilding activation cache {entry}: {problem}.")
                acts = build(model, hook, inputs, entry, spec, batch_size, shard_size=shard_size,
                             progress=progress, max_resident_bytes=memory_budget)
    return materialize(acts, "cpu", memory_budget)


def cached_activations(subject, hook: str, cache_dir: Path, **options):
    """(training, held-out) activations at `hook`, each from the cache when intact. The held-out
    vectors come from the subject's eval sequences, disjoint from the training ones (mod113, which
    trains and evaluates on all 12,769 inputs, says so with `eval_is_train`). `options`: load_or_build's
    (dtype, memory_budget)."""
    train_acts = subject_activations(subject, hook, cache_dir, max_vectors=getattr(subject, "max_train_vectors", None),
                                     **options)
    if getattr(subject, "eval_is_train", False):
        return train_acts, train_acts
    eval_acts = load_or_build(subject, hook, subject.eval_dataset(), {**subject.data_spec(), "part": "eval"},
                              cache_dir, **options)
    return train_acts, eval_acts
