"""The activation cache: built once, keyed by spec, checksummed, and rebuilt when corrupt or stale."""

import json

import torch

from sae_lab.artifacts import cache_meta_file, cache_tensor_file
from sae_lab.data import cache as C
from sae_lab.models.mod113 import Mod113


class CountingModel:
    """A protocol-conforming stand-in that counts forward passes (the cache's cost)."""

    name = "counting"
    d_model = 4
    n_layers = 1

    def __init__(self):
        self.calls = 0

    def fingerprint(self):
        return "abc"

    def hook_name(self, layer, site="resid_post"):
        return f"blocks.{layer}.hook_{site}"

    def activations(self, batch, hook):
        self.calls += 1
        return batch.float().repeat(1, 4)[:, :4] * 2


def _entry(cache_dir, model, hook, data, n):
    return cache_dir / C.cache_key(C.cache_spec(model, hook, data, n))


def test_built_once_then_loaded(tmp_path):
    model, inputs = CountingModel(), torch.arange(10).view(10, 1)
    a = C.load_or_build(model, "h", inputs, {"d": 1}, tmp_path)
    b = C.load_or_build(model, "h", inputs, {"d": 1}, tmp_path)
    assert model.calls == 1
    assert torch.equal(a, b) and torch.equal(a[:, 0], torch.arange(10.0) * 2)
    meta = json.loads(cache_meta_file(_entry(tmp_path, model, "h", {"d": 1}, 10)).read_text())
    assert meta["shape"] == [10, 4] and len(meta["sha256"]) == 64


def test_corrupt_file_is_detected_and_rebuilt(tmp_path, capsys):
    model, inputs = CountingModel(), torch.arange(10).view(10, 1)
    good = C.load_or_build(model, "h", inputs, {"d": 1}, tmp_path)
    path = cache_tensor_file(_entry(tmp_path, model, "h", {"d": 1}, 10))
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF  # flip bits inside the tensor data
    path.write_bytes(bytes(raw))
    again = C.load_or_build(model, "h", inputs, {"d": 1}, tmp_path)
    assert model.calls == 2
    assert "fails its checksum (corrupt)" in capsys.readouterr().out
    assert torch.equal(again, good)
    assert C.verify(path.parent, C.cache_spec(model, "h", {"d": 1}, 10)) is None


def test_stale_meta_is_rebuilt(tmp_path, capsys):
    model, inputs = CountingModel(), torch.arange(10).view(10, 1)
    C.load_or_build(model, "h", inputs, {"d": 1}, tmp_path)
    meta_path = cache_meta_file(_entry(tmp_path, model, "h", {"d": 1}, 10))
    meta = json.loads(meta_path.read_text())
    meta["spec"]["hook"] = "other"
    meta_path.write_text(json.dumps(meta))
    C.load_or_build(model, "h", inputs, {"d": 1}, tmp_path)
    assert model.calls == 2 and "stale" in capsys.readouterr().out


def test_different_specs_get_different_entries(tmp_path):
    model, inputs = CountingModel(), torch.arange(10).view(10, 1)
    C.load_or_build(model, "h", inputs, {"d": 1}, tmp_path)
    C.load_or_build(model, "g", inputs, {"d": 1}, tmp_path)
    C.load_or_build(model, "h", inputs[:5], {"d": 1}, tmp_path)
    assert model.calls == 3 and len(list(tmp_path.iterdir())) == 3


def test_mod113_cache_matches_direct_activations(cache_dir):
    model = Mod113()
    hook = model.hook_name(1)
    inputs = model.dataset()
    acts = C.subject_activations(model, hook, cache_dir)
    assert acts.shape == (12769, 128)
    assert torch.allclose(acts[:50], model.activations(inputs[:50], hook), atol=1e-6)
