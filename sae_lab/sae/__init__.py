"""Dictionary learners on the member axis, one module per architecture, and their LightningModule.

Each architecture module registers itself (registry.py); `load_architectures()` imports them all. This
package imports nothing on its own, so validating a config needs no torch: the names below are imported
on first use (`from sae_lab.sae import TopKSAE` works as usual)."""

from importlib import import_module
from typing import Any

# name -> the module of this package that defines it
_EXPORTS = {
    "MemberLoss": "base", "MemberSAE": "base", "SAEOutput": "base", "SparseCodes": "base", "init_decoder": "base",
    "SAEConfig": "registry", "REGISTRY": "registry", "architecture_class": "registry",
    "architecture_config": "configs", "build_sae": "registry", "register": "registry",
    "load_architectures": "registry",
    "BatchTopKConfig": "batchtopk", "BatchTopKSAE": "batchtopk", "JumpReLUConfig": "jumprelu",
    "JumpReLUSAE": "jumprelu", "MatryoshkaConfig": "matryoshka", "MatryoshkaSAE": "matryoshka",
    "ReLUConfig": "relu", "ReLUSAE": "relu", "TopKConfig": "topk", "TopKSAE": "topk",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # PEP 562: a name is imported when first asked for
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import_module(f"{__name__}.registry").load_architectures()  # REGISTRY holds every architecture
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
