"""Latent self-consistency (docs/metrics.md): x_m = σ(enc(x)), x̂ = dec(x_m), x_t = σ(enc(x̂));
L_cert = E‖x_t − x_m‖², on the support of x_m only for TopK-style encoders."""

from __future__ import annotations

import torch


def self_consistency(x_m: torch.Tensor, x_t: torch.Tensor, support_only: bool) -> torch.Tensor:
    """Mean over tokens of ‖x_t − x_m‖² ([..., N, m] -> [...]); `support_only` masks to supp(x_m)
    with the mask detached, so support switching is not penalised."""
    diff = x_t - x_m
    if support_only:
        diff = diff * (x_m != 0).to(diff.dtype).detach()
    return diff.pow(2).sum(-1).mean(-1)


def warmup_weight(step: int, weight: float, start: int, end: int) -> float:
    """λ(step): 0 before `start`, a linear ramp to `weight` at `end`, then `weight`."""
    if step < start:
        return 0.0
    if step >= end:
        return float(weight)
    return float(weight) * (step - start) / max(1, end - start)
