"""The config index (sae_lab/sae/config_index.json) lets a config be validated without importing torch:
it must be current, describe exactly the architectures' own dataclasses, and never be used once stale."""

import dataclasses
import json
import typing

import pytest

from sae_lab.sae import configs
from sae_lab.sae.registry import load_architectures


def test_the_shipped_index_matches_the_sources():
    assert configs.read_index() is not None, \
        "sae_lab/sae changed since config_index.json was written: run python -m sae_lab.sae.configs"


def test_the_index_rebuilds_each_architectures_config_exactly():
    indexed = configs.read_index()
    live = {name: cls.config_class for name, cls in load_architectures().items()}
    assert sorted(indexed) == sorted(live)
    for name, config in live.items():
        rebuilt = indexed[name]
        assert [f.name for f in dataclasses.fields(rebuilt)] == [f.name for f in dataclasses.fields(config)]
        assert typing.get_type_hints(rebuilt) == typing.get_type_hints(config), name
        assert dataclasses.asdict(rebuilt()) == dataclasses.asdict(config()), name


def test_a_stale_index_is_not_used(tmp_path, monkeypatch):
    index = json.loads(configs.INDEX_FILE.read_text())
    index["sources"]["topk.py"] = "0" * 64  # as if topk.py had been edited after the index was written
    stale = tmp_path / "config_index.json"
    stale.write_text(json.dumps(index))
    monkeypatch.setattr(configs, "INDEX_FILE", stale)
    assert configs.read_index() is None
    monkeypatch.setattr(configs, "INDEX_FILE", tmp_path / "missing.json")
    assert configs.read_index() is None


@pytest.mark.parametrize("name", ["ksvd", "topk"])
def test_indexed_defaults_are_the_modules_defaults(name):
    # ksvd overrides the shared `tied` default; topk's aux_coefficient is a float expression (1 / 32)
    indexed = configs.read_index()[name]()
    assert indexed == dataclasses.replace(indexed, **dataclasses.asdict(load_architectures()[name].config_class()))
