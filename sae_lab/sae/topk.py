"""TopK SAE (Gao et al. 2024): keep the k largest pre-activations per token, ReLU them."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sae_lab.sae.base import MemberSAE


class TopKSAE(MemberSAE):
    architecture = "topk"

    def __init__(self, d_model: int, d_sae: int, member_seeds: Sequence[int], k: int) -> None:
        if not 1 <= k <= d_sae:
            raise ValueError(f"k={k} must be between 1 and d_sae={d_sae}.")
        super().__init__(d_model, d_sae, member_seeds)
        self.k = int(k)

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        values, indices = pre.topk(self.k, dim=-1, sorted=False)
        return torch.zeros_like(pre).scatter_(-1, indices, values.relu())

    def extra_cfg(self) -> dict:
        return {"k": self.k}
