"""Dictionary learners on the member axis, one module per architecture, and their LightningModule."""

from __future__ import annotations

from collections.abc import Sequence

from sae_lab.sae.base import MemberSAE, init_decoder
from sae_lab.sae.topk import TopKSAE

ARCHITECTURES = ("topk",)


def build_sae(architecture: str, d_model: int, d_sae: int, member_seeds: Sequence[int],
              k: int) -> MemberSAE:
    if architecture == "topk":
        return TopKSAE(d_model, d_sae, member_seeds, k=k)
    raise ValueError(f"sae.architecture={architecture!r} is not known; allowed: {', '.join(ARCHITECTURES)}.")


__all__ = ["ARCHITECTURES", "MemberSAE", "TopKSAE", "build_sae", "init_decoder"]
