"""The on-disk format of one activation-cache entry, shared by the writer, the reader and `verify`.

Layout of one entry (`cache_entry_dir(cache_dir, key)`)::

    activations.safetensors              the whole cache when it fits in one shard (`cache_tensor_file`)
    activations-00000.safetensors ...    otherwise: shard i holds rows [i*shard_size, (i+1)*shard_size)
                                         (`cache_shard_file`)
    meta.json                            spec, shape, dtype, shard list (file, shape, bytes, sha256);
                                         written last, so an entry without it is incomplete

Each shard is a standard safetensors file with one tensor "activations" [rows, d_model], float32 or
bfloat16 (the raw bf16 bits; numpy has no bf16, so the loader views them as torch.bfloat16).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from sae_lab.artifacts import cache_meta_file
from sae_lab.shipped import sha256_of

FORMAT_VERSION = 2
STORAGE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
# safetensors dtype names of the storage dtypes.
SAFETENSORS_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16}
# Name of the one tensor in each shard file.
TENSOR_NAME = "activations"


def read_meta(entry: Path) -> dict[str, Any]:
    """The entry's meta.json (raises OSError/ValueError when missing or unreadable)."""
    return json.loads(cache_meta_file(entry).read_text())


file_sha256 = sha256_of  # one sha256 reader for cache shards and shipped files


def combined_sha256(shard_digests: Iterable[str]) -> str:
    """The entry's checksum: sha256 of its shards' hex digests, one per line, in order."""
    return hashlib.sha256("\n".join(shard_digests).encode()).hexdigest()
