"""docs/extending.md's promise: an architecture is one class plus its config. This one lives in this test
module, registers itself, and trains, exports and reloads through sae_lab unchanged."""

from dataclasses import dataclass

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from sae_lab.config import CONF_DIR
from sae_lab.sae.base import MemberSAE, SAEConfig
from sae_lab.sae.export import load_member
from sae_lab.sae.registry import REGISTRY, register
from sae_lab.training.loop import train


@dataclass
class ShrinkConfig(SAEConfig):
    shrink: float = 0.05  # soft threshold subtracted from every pre-activation


class ShrinkSAE(MemberSAE):
    """Soft-threshold codes: z = relu(pre - shrink)."""

    unit_norm_decoder = True

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        return (pre - self.cfg.shrink).relu()


@pytest.fixture
def shrink_registered():
    register("shrink", ShrinkConfig)(ShrinkSAE)
    yield
    REGISTRY.pop("shrink")


def test_toy_architecture_trains_exports_and_reloads(tmp_path, cache_dir, shrink_registered):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["budget=smoke", "progress=false", f"cache_dir={cache_dir}",
                                          "d_sae=128", "k=4"])
    with open_dict(cfg):
        cfg.sae = {"architecture": "shrink", "shrink": 0.2}
    last = train(cfg, tmp_path / "run")
    assert last[0]["epoch"] == 2 and last[0]["mse_mean"] > 0
    sae = load_member(tmp_path / "run", 0)
    assert type(sae) is ShrinkSAE and sae.cfg == ShrinkConfig(shrink=0.2)
    x = torch.randn(7, 128)
    pre = sae.pre_activations(x)
    assert torch.equal(sae.encode(x), (pre - 0.2).relu())
