"""JumpReLU SAE (Rajamanoharan et al. 2024): z = pre · H(pre − θ) with per-feature thresholds θ,
trained with straight-through estimators (rectangle kernel of bandwidth ε) and an L0 penalty."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from sae_lab.sae.base import MemberSAE


def _rectangle(u: torch.Tensor) -> torch.Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, threshold, bandwidth):
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return pre * (pre > threshold)

    @staticmethod
    def backward(ctx, grad):
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_pre = grad * (pre > threshold)
        # ∂/∂θ JumpReLU ≈ −(θ/ε) K((pre − θ)/ε)
        grad_threshold = -(threshold / eps) * _rectangle((pre - threshold) / eps) * grad
        return grad_pre, grad_threshold.sum(dim=-2, keepdim=True), None


class _Step(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, threshold, bandwidth):
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        # ∂/∂θ H(pre − θ) ≈ −(1/ε) K((pre − θ)/ε); no gradient to pre (as in the paper)
        grad_threshold = -(1.0 / eps) * _rectangle((pre - threshold) / eps) * grad
        return torch.zeros_like(pre), grad_threshold.sum(dim=-2, keepdim=True), None


class JumpReLUSAE(MemberSAE):
    architecture = "jumprelu"

    def __init__(self, d_model: int, d_sae: int, member_seeds: Sequence[int], l0_coefficient: float = 1e-3,
                 bandwidth: float = 0.05, threshold_init: float = 0.1, tied: bool = False) -> None:
        super().__init__(d_model, d_sae, member_seeds, tied=tied)
        if l0_coefficient < 0 or bandwidth <= 0 or threshold_init <= 0:
            raise ValueError("jumprelu needs l0_coefficient >= 0, bandwidth > 0 and threshold_init > 0, got "
                             f"{l0_coefficient}, {bandwidth}, {threshold_init}.")
        self.l0_coefficient, self.bandwidth = float(l0_coefficient), float(bandwidth)
        # θ = exp(log_threshold) stays positive.
        self.log_threshold = nn.Parameter(torch.full((len(self.member_seeds), d_sae), math.log(threshold_init)))

    @property
    def threshold(self) -> torch.Tensor:
        return self.log_threshold.exp()

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        return _JumpReLU.apply(pre, self.threshold[:, None, :], self.bandwidth)

    def member_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        pre = self.pre_activations(x)
        threshold = self.threshold[:, None, :]
        z = _JumpReLU.apply(pre, threshold, self.bandwidth)
        l0 = _Step.apply(pre, threshold, self.bandwidth).sum(-1).mean(-1)
        return self.mse(x, self.decode(z)) + self.l0_coefficient * l0, z

    def member_state(self, member: int) -> dict[str, torch.Tensor]:
        state = super().member_state(member)
        state["threshold"] = self.threshold[member].detach()  # SAELens's JumpReLU key
        return state

    def extra_cfg(self) -> dict:
        return {**super().extra_cfg(), "l0_coefficient": self.l0_coefficient, "bandwidth": self.bandwidth}
