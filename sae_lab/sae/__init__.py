"""Dictionary learners on the member axis, one module per architecture, and their LightningModule."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from sae_lab.sae.base import MemberSAE, init_decoder
from sae_lab.sae.batchtopk import BatchTopKSAE
from sae_lab.sae.jumprelu import JumpReLUSAE
from sae_lab.sae.matryoshka import MatryoshkaSAE
from sae_lab.sae.relu import ReLUSAE
from sae_lab.sae.topk import TopKSAE

REGISTRY: dict[str, type[MemberSAE]] = {cls.architecture: cls for cls in
                                        (TopKSAE, BatchTopKSAE, ReLUSAE, JumpReLUSAE, MatryoshkaSAE)}
ARCHITECTURES = tuple(REGISTRY)
_USES_K = ("topk", "batchtopk", "matryoshka")


def build_sae(architecture: str, d_model: int, d_sae: int, member_seeds: Sequence[int], k: int,
              **options: Any) -> MemberSAE:
    """Build the named architecture; `options` are its own keys (l1_coefficient, tied, ...)."""
    if architecture not in REGISTRY:
        raise ValueError(f"sae.architecture={architecture!r} is not known; allowed: {', '.join(ARCHITECTURES)}.")
    if d_sae < 1:
        raise ValueError(f"d_sae={d_sae} must be at least 1.")
    kwargs = {key: value for key, value in options.items() if value is not None}
    accepted = [name for name in inspect.signature(REGISTRY[architecture].__init__).parameters
                if name not in ("self", "d_model", "d_sae", "member_seeds", "k")]
    for key in kwargs:
        if key not in accepted:
            raise ValueError(f"sae.{key} does not apply to sae={architecture}; its keys are "
                             f"{', '.join('sae.' + a for a in accepted)}.")
    if architecture in _USES_K:
        kwargs["k"] = k
    return REGISTRY[architecture](d_model, d_sae, member_seeds, **kwargs)


__all__ = ["ARCHITECTURES", "BatchTopKSAE", "JumpReLUSAE", "MatryoshkaSAE", "MemberSAE", "ReLUSAE", "TopKSAE",
           "build_sae", "init_decoder"]
