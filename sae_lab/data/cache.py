"""Activation cache: built once per (model, hook, data spec, token count, positions), keyed by a hash
of those, stored as safetensors + meta.json with a checksum, verified on every load.

Every seed and architecture of a sweep reads the same entry; a stale or corrupt entry is rebuilt
with a message saying why.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm

from sae_lab.artifacts import (
    atomic_save_tensors,
    atomic_write_text,
    cache_entry_dir,
    cache_meta_file,
    cache_tensor_file,
)
from sae_lab.models.protocol import SubjectModel

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


def cache_spec(model: SubjectModel, hook: str, data: dict[str, Any], n_tokens: int) -> dict[str, Any]:
    """Everything the cached activations depend on; its hash is the cache key."""
    return {"format": FORMAT_VERSION, "model": model.name, "weights": model.fingerprint(), "hook": hook,
            "data": data, "n_tokens": int(n_tokens)}


def cache_key(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(entry: Path, spec: dict[str, Any]) -> str | None:
    """None if the entry is complete and intact, else the reason it is not."""
    meta_path, tensor_path = cache_meta_file(entry), cache_tensor_file(entry)
    if not meta_path.is_file() or not tensor_path.is_file():
        return "it is incomplete"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return f"{meta_path} is unreadable"
    if meta.get("spec") != spec:
        return "it was built for a different spec (stale)"
    if file_sha256(tensor_path) != meta.get("sha256"):
        return f"{tensor_path} fails its checksum (corrupt)"
    return None


def build(model: SubjectModel, hook: str, inputs: torch.Tensor, entry: Path, spec: dict[str, Any],
          batch_size: int = 4096) -> torch.Tensor:
    chunks = []
    for start in tqdm(range(0, len(inputs), batch_size), desc=f"caching {hook}", unit="batch",
                      leave=False):
        chunks.append(model.activations(inputs[start:start + batch_size], hook).cpu())
    acts = torch.cat(chunks).float().contiguous()
    tensor_path = cache_tensor_file(entry)
    atomic_save_tensors(tensor_path, {"activations": acts})
    meta = {"spec": spec, "shape": list(acts.shape), "sha256": file_sha256(tensor_path)}
    atomic_write_text(cache_meta_file(entry), json.dumps(meta, indent=2) + "\n")
    return acts


def subject_activations(model: SubjectModel, hook: str, cache_dir: Path) -> torch.Tensor:
    """The cached activations of the subject's whole data set at `hook`."""
    return load_or_build(model, hook, model.dataset(), model.data_spec(), cache_dir)


def load_or_build(model: SubjectModel, hook: str, inputs: torch.Tensor, data: dict[str, Any],
                  cache_dir: Path) -> torch.Tensor:
    """Activations [N, d_model] for `inputs` at `hook`, from the cache when intact."""
    spec = cache_spec(model, hook, data, len(inputs))
    entry = cache_entry_dir(Path(cache_dir), cache_key(spec))
    problem = verify(entry, spec)
    if problem is None:
        return load_file(str(cache_tensor_file(entry)))["activations"]
    if cache_meta_file(entry).exists() or cache_tensor_file(entry).exists():
        print(f"Rebuilding activation cache {entry}: {problem}.")
    return build(model, hook, inputs, entry, spec)
