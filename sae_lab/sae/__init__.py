"""Dictionary learners on the member axis, one module per architecture, and their LightningModule.

Importing this package registers the built-in architectures (each module registers itself)."""

from sae_lab.sae import batchtopk, jumprelu, matryoshka, relu, topk  # noqa: F401  (registration)
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
