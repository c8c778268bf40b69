"""Each default once: every key the schema (sae_lab.config.schema) gives a default must have the same
value in the composed default config (conf/train.yaml and its default group choices), so a dict passed to
`validate` from a notebook means what the same keys mean on the command line."""

from __future__ import annotations

import dataclasses
import os

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from sae_lab.config import CONF_DIR, TrainConfig


def _schema_defaults(cls: type, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            continue
        if f.name == "sae":  # the architecture's own config class holds its defaults (sae/registry.py)
            out["sae.architecture"] = value["architecture"]
        elif dataclasses.is_dataclass(value):
            out |= _schema_defaults(type(value), f"{prefix}{f.name}.")
        elif value is not None or f.name not in ("model", "logger"):  # null model/logger: filled in by validate
            out[f"{prefix}{f.name}"] = value
    return out


@pytest.fixture(scope="module")
def composed():
    env = os.environ.pop("SAE_LAB_DEVICE", None)  # the yaml's device default is the env var's fallback
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("train")
        return OmegaConf.to_container(cfg, resolve=True)
    finally:
        if env is not None:
            os.environ["SAE_LAB_DEVICE"] = env


def test_every_schema_default_equals_the_default_yaml(composed):
    defaults = _schema_defaults(TrainConfig)
    assert len(defaults) > 40  # the walk reaches the nested nodes
    got = {key: OmegaConf.select(OmegaConf.create(composed), key, default="<absent>") for key in defaults}
    differ = {k: (defaults[k], got[k]) for k in defaults if got[k] != defaults[k]}
    assert differ == {}
