"""Matryoshka BatchTopK SAE (Bussmann et al. 2025; Nabeshima 2024): the loss sums the reconstruction
errors of nested prefixes of the dictionary, so the first group must reconstruct on its own."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sae_lab.sae.base import MemberLoss
from sae_lab.sae.batchtopk import BatchTopKConfig, BatchTopKSAE
from sae_lab.sae.registry import register


@dataclass
class MatryoshkaConfig(BatchTopKConfig):
    # Nested prefix sizes, summing to d_sae; null = doubling prefixes (64, 64, 128, 256, 512 for 1024).
    group_sizes: list[int] | None = None


@register("matryoshka", MatryoshkaConfig)
class MatryoshkaSAE(BatchTopKSAE):
    def __init__(self, d_model: int, d_sae: int, member_seeds: Sequence[int], k: int | None = None,
                 cfg: MatryoshkaConfig | None = None, **options: Any) -> None:
        super().__init__(d_model, d_sae, member_seeds, k=k, cfg=cfg, **options)
        sizes = list(self.cfg.group_sizes) if self.cfg.group_sizes else _default_groups(d_sae)
        if sum(sizes) != d_sae or min(sizes) < 1:
            raise ValueError(f"sae.group_sizes={sizes} must be positive and sum to d_sae={d_sae}.")
        self.group_sizes = [int(s) for s in sizes]
        self.cfg = dataclasses.replace(self.cfg, group_sizes=self.group_sizes)  # exported resolved

    def prefix_reconstructions(self, z: torch.Tensor) -> list[torch.Tensor]:
        """x̂ from the first group, the first two, ..., all groups (cumulative, one pass)."""
        out, x_hat, start = [], self.b_dec[:, None, :], 0
        for size in self.group_sizes:
            x_hat = x_hat + torch.bmm(z[..., start:start + size], self.W_dec[:, start:start + size])
            out.append(x_hat)
            start += size
        return out

    def member_loss(self, x: torch.Tensor) -> MemberLoss:
        z = self.batch_select(self.pre_activations(x))
        return MemberLoss(torch.stack([self.mse(x, x_hat) for x_hat in self.prefix_reconstructions(z)]).sum(0), z)


def _default_groups(d_sae: int) -> list[int]:
    """Doubling prefixes: d_sae/16, /16, /8, /4, /2 (e.g. 64, 64, 128, 256, 512 for 1024)."""
    if d_sae < 16:
        return [d_sae]
    sizes = [d_sae // 16, d_sae // 16, d_sae // 8, d_sae // 4]
    return sizes + [d_sae - sum(sizes)]
