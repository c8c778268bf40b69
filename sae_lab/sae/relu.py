"""ReLU SAE with an L1 penalty on feature activations weighted by decoder row norms
(Anthropic, April 2024 update): loss = mse + λ · mean_t Σ_i z_ti ‖d_i‖. Decoder norms stay free,
so the penalty cannot be dodged by shrinking z and growing the decoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sae_lab.sae.base import MemberSAE


class ReLUSAE(MemberSAE):
    architecture = "relu"
    unit_norm_decoder = False

    def __init__(self, d_model: int, d_sae: int, member_seeds: Sequence[int], l1_coefficient: float = 1e-3,
                 tied: bool = False) -> None:
        super().__init__(d_model, d_sae, member_seeds, tied=tied)
        if l1_coefficient < 0:
            raise ValueError(f"l1_coefficient={l1_coefficient} must be >= 0.")
        self.l1_coefficient = float(l1_coefficient)

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        return pre.relu()

    def l1_penalty(self, z: torch.Tensor) -> torch.Tensor:
        """mean_t Σ_i z_ti ‖d_i‖ per member, [E]."""
        return (z * self.W_dec.norm(dim=-1)[:, None, :]).sum(-1).mean(-1)

    def member_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        z, x_hat = self(x)
        return self.mse(x, x_hat) + self.l1_coefficient * self.l1_penalty(z), z

    def extra_cfg(self) -> dict:
        return {**super().extra_cfg(), "l1_coefficient": self.l1_coefficient}
