"""JumpReLU SAE (Rajamanoharan et al. 2024): z = pre · H(pre − θ) with per-feature thresholds θ,
trained with straight-through estimators (rectangle kernel of bandwidth ε) and an L0 penalty."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sae_lab.sae.base import MemberLoss, MemberSAE, SAEConfig
from sae_lab.sae.registry import register


@dataclass
class JumpReLUConfig(SAEConfig):
    l0_coefficient: float = 1e-3  # weight of the L0 penalty
    bandwidth: float = 0.05       # width ε of the straight-through rectangle kernel
    threshold_init: float = 0.1   # initial per-feature threshold θ (also where resampling resets it)


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


@register("jumprelu", JumpReLUConfig)
class JumpReLUSAE(MemberSAE):
    saelens_architecture = "jumprelu"

    def __init__(self, d_model: int, d_sae: int, member_seeds: Sequence[int], k: int | None = None,
                 cfg: JumpReLUConfig | None = None, **options: Any) -> None:
        super().__init__(d_model, d_sae, member_seeds, k=k, cfg=cfg, **options)
        l0_coefficient, bandwidth, threshold_init = self.cfg.l0_coefficient, self.cfg.bandwidth, \
            self.cfg.threshold_init
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

    def member_loss(self, x: torch.Tensor) -> MemberLoss:
        pre = self.pre_activations(x)
        threshold = self.threshold[:, None, :]
        z = _JumpReLU.apply(pre, threshold, self.bandwidth)
        l0 = _Step.apply(pre, threshold, self.bandwidth).sum(-1).mean(-1)
        return MemberLoss(self.mse(x, self.decode(z)) + self.l0_coefficient * l0, z)

    def feature_parameters(self) -> list[nn.Parameter]:
        return [*super().feature_parameters(), self.log_threshold]

    @torch.no_grad()
    def reinit_state(self, member: int, indices: torch.Tensor, level: torch.Tensor) -> None:
        # A dead feature's threshold has often grown past anything it sees; reset it below the
        # revived feature's pre-activation on its own input (`level`) so the feature fires there.
        theta = torch.clamp(0.5 * torch.as_tensor(level, dtype=self.log_threshold.dtype),
                            max=self.cfg.threshold_init).clamp_min(1e-6)
        self.log_threshold[member, indices] = theta.log().to(self.log_threshold.device)

    def member_state(self, member: int) -> dict[str, torch.Tensor]:
        state = super().member_state(member)
        state["threshold"] = self.threshold[member].detach()  # SAELens's JumpReLU key
        return state

    @torch.no_grad()
    def load_member_state(self, state: dict[str, torch.Tensor]) -> None:
        super().load_member_state(state)
        self.log_threshold.copy_(exact_log(state["threshold"].to(self.log_threshold))[None])


def exact_log(theta: torch.Tensor, max_steps: int = 8) -> torch.Tensor:
    """log θ nudged by ulps until exp() gives back θ bit for bit: the export stores θ = exp(log θ),
    and a reload one ulp off would move features that sit exactly on their threshold."""
    log = theta.log()
    for _ in range(max_steps):
        back = log.exp()
        if torch.equal(back, theta):
            break
        step = torch.where(back < theta, torch.full_like(log, float("inf")), torch.full_like(log, -float("inf")))
        log = torch.where(back == theta, log, torch.nextafter(log, step))
    return log
