"""Dictionary learners on the member axis, one module per architecture, and their LightningModule.

Importing this package imports every module in it, so each architecture module registers itself:
adding one is its module plus its conf/sae yaml, nothing else."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("module",):  # the LightningModule imports Lightning: only on demand
        importlib.import_module(f"{__name__}.{_module.name}")

# ruff: noqa: E402  (the re-exports below come after the registration loop on purpose)
from sae_lab.sae.base import MemberLoss, MemberSAE, SAEConfig, SAEOutput, SparseCodes, init_decoder
from sae_lab.sae.batchtopk import BatchTopKConfig, BatchTopKSAE
from sae_lab.sae.jumprelu import JumpReLUConfig, JumpReLUSAE
from sae_lab.sae.matryoshka import MatryoshkaConfig, MatryoshkaSAE
from sae_lab.sae.registry import REGISTRY, architecture_class, architecture_config, build_sae, register
from sae_lab.sae.relu import ReLUConfig, ReLUSAE
from sae_lab.sae.topk import TopKConfig, TopKSAE

__all__ = ["REGISTRY", "BatchTopKConfig", "BatchTopKSAE", "JumpReLUConfig", "JumpReLUSAE", "MatryoshkaConfig",
           "MatryoshkaSAE", "MemberLoss", "MemberSAE", "ReLUConfig", "ReLUSAE", "SAEConfig", "SAEOutput",
           "SparseCodes", "TopKConfig", "TopKSAE", "architecture_class", "architecture_config", "build_sae",
           "init_decoder", "register"]
