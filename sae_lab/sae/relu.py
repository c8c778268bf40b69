"""ReLU SAE with an L1 penalty on feature activations weighted by decoder row norms
(Anthropic, April 2024 update): loss = mse + λ · mean_t Σ_i z_ti ‖d_i‖. Decoder norms stay free,
so the penalty cannot be dodged by shrinking z and growing the decoder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sae_lab.sae.base import MemberLoss, MemberSAE, SAEConfig
from sae_lab.sae.registry import register


@dataclass
class ReLUConfig(SAEConfig):
    l1_coefficient: float = 1e-3  # λ of the norm-weighted L1 penalty (the paper's 1e-3)


@register("relu", ReLUConfig)
class ReLUSAE(MemberSAE):
    saelens_architecture = "standard"
    unit_norm_decoder = False

    def __init__(self, d_model: int, d_sae: int, member_seeds: Sequence[int], k: int | None = None,
                 cfg: ReLUConfig | None = None, **options: Any) -> None:
        super().__init__(d_model, d_sae, member_seeds, k=k, cfg=cfg, **options)
        if self.cfg.l1_coefficient < 0:
            raise ValueError(f"sae.l1_coefficient={self.cfg.l1_coefficient} must be >= 0.")
        self.l1_coefficient = float(self.cfg.l1_coefficient)

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        return pre.relu()

    def l1_penalty(self, z: torch.Tensor) -> torch.Tensor:
        """mean_t Σ_i z_ti ‖d_i‖ per member, [E]."""
        return (z * self.W_dec.norm(dim=-1)[:, None, :]).sum(-1).mean(-1)

    def member_loss(self, x: torch.Tensor) -> MemberLoss:
        z, x_hat = self(x)
        return MemberLoss(self.mse(x, x_hat) + self.l1_coefficient * self.l1_penalty(z), z)
