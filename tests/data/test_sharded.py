"""The sharded, streamed, memory-mapped activation cache: same rows and batches as in memory, bounded
memory, interrupted builds, bf16 storage."""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sae_lab.artifacts import cache_meta_file, cache_tensor_file
from sae_lab.data import ActivationDataModule, ShardedActivations, ShuffledBatches
from sae_lab.data import cache as C

ROOT = Path(__file__).resolve().parents[2]


class StreamModel:
    """Input ids [B] -> `positions` vectors each, [B * positions, d]; a vector depends only on its
    global index, through exact integer arithmetic (multiples of 2**-16), so any chunking gives the
    same bits."""

    name = "stream"
    n_layers = 1

    def __init__(self, d=8, positions=4, fail_after=None):
        self.d_model, self.positions, self.fail_after = d, positions, fail_after
        self.calls = 0

    def fingerprint(self):
        return "f00"

    def hook_name(self, layer, site="resid_post"):
        return f"blocks.{layer}.hook_{site}"

    def activations(self, batch, hook):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("killed")
        return expected(batch, self.d_model, self.positions)


def expected(ids, d=8, positions=4):
    t = (ids.reshape(-1, 1) * positions + torch.arange(positions)).reshape(-1, 1)
    j = torch.arange(d)
    return ((t * 2654435761 + j * 40503 + 12345) % 65536).float() / 65536 - 0.5


def _entry(cache_dir, model, n, **spec_options):
    spec = C.cache_spec(model, "h", {"d": 1}, n, **spec_options)
    return cache_dir / C.cache_key(spec), spec


def _sharded(tmp_path, n=250, shard_size=100, batch_size=10, **options):
    model = StreamModel()
    acts = C.load_or_build(model, "h", torch.arange(n), {"d": 1}, tmp_path, shard_size=shard_size,
                           batch_size=batch_size, memory_budget=0, progress=False, **options)
    assert isinstance(acts, ShardedActivations)
    return model, acts


def _files(entry):
    """File names in a cache entry, the build lock aside."""
    return sorted(p.name for p in entry.iterdir() if p.name != ".build.lock")


def _epoch(loader):
    out = []
    for batch in loader:
        loader.mark_consumed()
        out.append(batch)
    return out


def test_streamed_build_writes_shards_with_checksums(tmp_path):
    model, acts = _sharded(tmp_path)  # 250 inputs x 4 positions = 1000 vectors, shards of 100
    entry, _ = _entry(tmp_path, model, 250)
    assert model.calls == 25 and acts.shape == (1000, 8) and acts.d_model == 8 and len(acts) == 1000
    assert acts.dtype == torch.float32 and acts.n_shards == 10
    meta = json.loads(cache_meta_file(entry).read_text())
    assert meta["shape"] == [1000, 8] and meta["dtype"] == "float32" and len(meta["sha256"]) == 64
    assert [s["file"] for s in meta["shards"]] == [f"activations-{i:05d}.safetensors" for i in range(10)]
    assert all(s["shape"] == [100, 8] and s["sha256"] == C.file_sha256(entry / s["file"])
               for s in meta["shards"])
    assert _files(entry) == sorted([*(s["file"] for s in meta["shards"]), "meta.json"])
    assert torch.equal(acts.to_tensor(), expected(torch.arange(250)))


def test_uneven_shards_and_one_shard_caches(tmp_path):
    model = StreamModel()
    acts = C.load_or_build(model, "h", torch.arange(99), {"d": 1}, tmp_path, shard_size=64, batch_size=7,
                           memory_budget=0, progress=False)
    assert [s.rows for s in acts._shards] == [64] * 6 + [12]
    assert torch.equal(acts.to_tensor(), expected(torch.arange(99)))
    # A cache that fits in one shard is the single file artifacts.cache_tensor_file names.
    small = C.load_or_build(model, "h", torch.arange(5), {"d": 1}, tmp_path, memory_budget=0, progress=False)
    entry, _ = _entry(tmp_path, model, 5)
    assert small.n_shards == 1 and cache_tensor_file(entry).is_file()
    assert torch.equal(small.to_tensor(), expected(torch.arange(5)))


def test_indexing_matches_the_in_memory_tensor(tmp_path):
    _, acts = _sharded(tmp_path)
    full = acts.to_tensor()
    gen = torch.Generator().manual_seed(0)
    cases = [torch.randperm(1000, generator=gen)[:300], torch.randint(0, 1000, (500,), generator=gen),
             torch.tensor([999, 0, 0, 500, -1, -1000]), torch.tensor([], dtype=torch.long),
             [3, 2, 1], np.array([7, 700, 70]), slice(None), slice(95, 305), slice(-10, None),
             slice(990, 2000), slice(1, 900, 7), slice(5, 5)]
    for index in cases:
        got = acts[index]
        assert got.dtype == torch.float32 and torch.equal(got, full[index]), index
    assert torch.equal(acts[123], full[123]) and torch.equal(acts[-1], full[-1])
    assert torch.equal(acts[np.int64(5)], full[5]) and torch.equal(acts[torch.tensor(6)], full[6])
    with pytest.raises(IndexError):
        acts[torch.tensor([1000])]
    with pytest.raises(IndexError):
        acts[-1001]
    with pytest.raises(TypeError):
        acts[torch.zeros(1000, dtype=torch.bool)]


def test_memmap_batches_are_bit_identical_to_in_memory(tmp_path):
    _, acts = _sharded(tmp_path)
    full = acts.to_tensor()
    for batch_size in (64, 1000, 333):
        a, b = ShuffledBatches(acts, batch_size, 7), ShuffledBatches(full, batch_size, 7)
        for _ in range(3):
            ea, eb = _epoch(a), _epoch(b)
            assert len(ea) == len(eb) == len(a)
            assert all(torch.equal(x, y) for x, y in zip(ea, eb, strict=True))
    # Through the DataModule: memory-mapped when over the budget, a tensor when it fits.
    mapped = ActivationDataModule(acts, acts, 100, data_seed=3, memory_budget=1000 * 8 * 4 - 1)
    loaded = ActivationDataModule(acts, acts, 100, data_seed=3, memory_budget=1000 * 8 * 4)
    assert isinstance(mapped.train_data, ShardedActivations) and mapped.eval_data is mapped.train_data
    assert isinstance(loaded.train_data, torch.Tensor) and torch.equal(loaded.train_data, full)
    for _ in range(3):
        assert all(torch.equal(x, y) for x, y in zip(_epoch(mapped.batches), _epoch(loaded.batches),
                                                     strict=True))


def test_memmap_batches_resume_mid_epoch(tmp_path):
    _, acts = _sharded(tmp_path)
    ref = ShuffledBatches(acts.to_tensor(), 128, 3)
    full = _epoch(ref) + _epoch(ref)
    first = ShuffledBatches(acts, 128, 3)
    seen = _epoch(first)
    it = iter(first)
    for _ in range(3):
        seen.append(next(it))
        first.mark_consumed()
    next(it)  # the prefetched batch is never trained on
    resumed = ShuffledBatches(acts, 128, 3)
    resumed.load_state_dict(first.state_dict())
    seen += _epoch(resumed)
    assert all(torch.equal(x, y) for x, y in zip(seen, full, strict=True))


def test_max_vectors_stops_an_endless_stream_exactly(tmp_path):
    model = StreamModel()
    pulled = []

    def stream():
        for i in itertools.count():
            pulled.append(i)
            yield torch.arange(i * 25, (i + 1) * 25)  # 100 vectors per batch

    acts = C.load_or_build(model, "h", stream(), {"stream": 1}, tmp_path, max_vectors=777, shard_size=256,
                           memory_budget=0, progress=False)
    assert acts.shape == (777, 8) and [s.rows for s in acts._shards] == [256, 256, 256, 9]
    assert len(pulled) == 8  # the stream is not consumed past what is needed
    assert torch.equal(acts.to_tensor(), expected(torch.arange(200))[:777])
    # Cached: the stream is not touched again.
    again = C.load_or_build(model, "h", stream(), {"stream": 1}, tmp_path, max_vectors=777, progress=False)
    assert model.calls == 8 and torch.equal(again, acts.to_tensor())


def test_killed_build_is_incomplete_and_rebuilt(tmp_path, capsys):
    killed = StreamModel(fail_after=5)  # 5 batches x 40 vectors = 2 shards of 100 written, then dies
    inputs = torch.arange(250)
    with pytest.raises(RuntimeError, match="killed"):
        C.load_or_build(killed, "h", inputs, {"d": 1}, tmp_path, shard_size=100, batch_size=10,
                        progress=False)
    entry, spec = _entry(tmp_path, killed, 250)
    assert _files(entry) == ["activations-00000.safetensors", "activations-00001.safetensors"]
    assert C.verify(entry, spec) == "it is incomplete"
    # What a SIGKILL mid-write or an older, larger build would also leave behind:
    (entry / ".activations-00002.safetensors.x1y2.tmp").write_bytes(b"partial")
    (entry / "activations-00031.safetensors").write_bytes(b"stale")

    model = StreamModel()
    acts = C.load_or_build(model, "h", inputs, {"d": 1}, tmp_path, shard_size=100, batch_size=10,
                           progress=False)
    assert "Rebuilding activation cache" in capsys.readouterr().out
    assert model.calls == 25 and C.verify(entry, spec) is None
    assert torch.equal(acts, expected(inputs))
    meta = json.loads(cache_meta_file(entry).read_text())
    assert _files(entry) == sorted([*(s["file"] for s in meta["shards"]), "meta.json"])


def test_missing_truncated_or_corrupt_shards_are_detected(tmp_path, capsys):
    model, acts = _sharded(tmp_path)
    entry, spec = _entry(tmp_path, model, 250)
    shard = entry / "activations-00004.safetensors"
    raw = bytearray(shard.read_bytes())
    raw[-5] ^= 0xFF
    shard.write_bytes(bytes(raw))
    assert C.verify(entry, spec) == f"{shard} fails its checksum (corrupt)"
    # Above full_hash_max_bytes only sizes (and headers, on open) are checked, as documented.
    assert C.verify(entry, spec, full_hash_max_bytes=100) is None
    shard.write_bytes(bytes(raw[:-4]))
    assert C.verify(entry, spec, full_hash_max_bytes=100) == f"{shard} has the wrong size (corrupt)"
    shard.write_bytes(b"\x00" * len(raw))  # right size, garbage header: caught on open, then rebuilt
    assert C.verify(entry, spec, full_hash_max_bytes=100) is None
    with pytest.raises(ValueError, match="no valid safetensors header"):
        ShardedActivations.open(entry)
    shard.unlink()
    assert C.verify(entry, spec) == f"{shard} is missing (incomplete)"
    again = C.load_or_build(model, "h", torch.arange(250), {"d": 1}, tmp_path, shard_size=100, batch_size=10,
                            progress=False)
    assert "is missing (incomplete)" in capsys.readouterr().out
    assert torch.equal(again, expected(torch.arange(250)))


def test_bfloat16_storage_round_trips(tmp_path):
    model = StreamModel()
    inputs = torch.arange(250)
    acts = C.load_or_build(model, "h", inputs, {"d": 1}, tmp_path, dtype="bfloat16", shard_size=100,
                           batch_size=10, memory_budget=0, progress=False)
    ref32 = expected(inputs)
    ref = ref32.to(torch.bfloat16).float()
    assert acts.dtype == torch.bfloat16 and not torch.equal(ref, ref32)  # the rounding is not trivial
    assert torch.equal(acts.to_tensor(), ref) and acts.to_tensor().dtype == torch.float32
    idx = torch.randperm(1000)[:200]
    assert torch.equal(acts[idx], ref[idx]) and torch.equal(acts[10:420], ref[10:420])
    entry, _ = _entry(tmp_path, model, 250, dtype="bfloat16")
    meta = json.loads(cache_meta_file(entry).read_text())
    assert meta["dtype"] == "bfloat16" and acts.nbytes == 1000 * 8 * 2
    # Batches are float32 in memory and memory-mapped alike; float32 and bf16 caches are separate entries.
    dm = ActivationDataModule(acts, acts, 64, 0, memory_budget=0)
    assert all(b.dtype == torch.float32 for b in _epoch(dm.batches))
    fits = C.load_or_build(model, "h", inputs, {"d": 1}, tmp_path, dtype="bfloat16", progress=False)
    assert isinstance(fits, torch.Tensor) and torch.equal(fits, ref) and model.calls == 25
    f32 = C.load_or_build(model, "h", inputs, {"d": 1}, tmp_path, progress=False)
    assert torch.equal(f32, ref32) and model.calls == 26


def test_mod113_numbers_are_unchanged(cache_dir):
    """The small default subject still gets an in-memory float32 tensor holding exactly what the
    unsharded cache held (model.activations in 4096-row chunks, concatenated), in one file."""
    from sae_lab.models.mod113 import Mod113

    model = Mod113()
    hook = model.hook_name(1)
    acts = C.subject_activations(model, hook, cache_dir)
    inputs = model.dataset()
    with torch.no_grad():
        old = torch.cat([model.activations(inputs[s:s + 4096], hook).cpu()
                         for s in range(0, len(inputs), 4096)]).float()
    assert isinstance(acts, torch.Tensor) and acts.dtype == torch.float32 and torch.equal(acts, old)
    entry = cache_dir / C.cache_key(C.cache_spec(model, hook, model.data_spec(), len(inputs)))
    assert cache_tensor_file(entry).is_file() and _files(entry) == ["activations.safetensors", "meta.json"]
