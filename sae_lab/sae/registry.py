"""Architectures by name: each registers its class together with its config dataclass.

`conf/sae/<name>.yaml` picks one; the Hydra schema, `build_sae`, the exported cfg.json and
`load_member` all derive from the registered config; `load_architectures` imports every module of
the package, so adding an architecture touches its own module and its yaml only.

This module imports no torch (nor does configs.py, which knows every architecture's config without
importing the architectures while its index is current): validating a config needs only those.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sae_lab.sae.base import MemberSAE


@dataclass
class SAEConfig:
    """Keys every architecture has; each architecture subclasses this with its own keys."""

    tied: bool = False  # decoder = encoderᵀ (one shared parameter)
    # The decoder is the subject's true dictionary, fixed (model=synthetic only): the encoder learns alone
    # (the latent self-consistency paper's oracle-decoder setting).
    oracle_decoder: bool = False


REGISTRY: dict[str, type[MemberSAE]] = {}
PACKAGE_DIR = Path(__file__).parent
# Modules of sae_lab.sae that define no architecture (module.py imports Lightning: only on demand).
NOT_ARCHITECTURES = ("module", "registry", "configs")
_loaded = False


def config_keys(config_class: type[SAEConfig]) -> list[str]:
    return [f.name for f in dataclasses.fields(config_class)]


def register(name: str, config_class: type[SAEConfig]) -> Callable[[type[MemberSAE]], type[MemberSAE]]:
    """Class decorator: `@register("topk", TopKConfig)`."""
    def wrap(cls: type[MemberSAE]) -> type[MemberSAE]:
        cls.architecture, cls.config_class = name, config_class
        REGISTRY[name] = cls
        return cls
    return wrap


def architecture_modules() -> list[str]:
    """The package's modules that may register an architecture (every module but NOT_ARCHITECTURES)."""
    return sorted(m.name for m in pkgutil.iter_modules([str(PACKAGE_DIR)]) if m.name not in NOT_ARCHITECTURES)


def load_architectures() -> dict[str, type[MemberSAE]]:
    """Import every architecture module (each registers itself); the full REGISTRY."""
    global _loaded
    if not _loaded:
        for name in architecture_modules():
            importlib.import_module(f"{__package__}.{name}")
        _loaded = True
    return REGISTRY


def architecture_class(name: str) -> type[MemberSAE]:
    architectures = load_architectures()
    if name not in architectures:
        raise ValueError(f"sae.architecture={name!r} is not known; allowed: {', '.join(sorted(architectures))}.")
    return architectures[name]


def build_sae(architecture: str, d_model: int, d_sae: int, member_seeds: Sequence[int], k: int | None = None,
              cfg: SAEConfig | None = None, **options: Any) -> MemberSAE:
    """Build the named architecture from its config (`cfg`) and/or keyword options."""
    cls = architecture_class(architecture)
    if d_sae < 1:
        raise ValueError(f"d_sae={d_sae} must be at least 1.")
    return cls(d_model, d_sae, member_seeds, k=k, cfg=cfg, **{k_: v for k_, v in options.items() if v is not None})


def architectures_loaded() -> bool:
    """Whether load_architectures has imported every architecture module in this process."""
    return _loaded
