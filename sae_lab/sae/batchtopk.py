"""BatchTopK SAE (Bussmann et al. 2024): the k·B largest activations over the whole batch, per member.

Training selects across the batch, so tokens get varying numbers of features with k on average.
Inference uses a per-member threshold learned during training (a running mean of the smallest
selected activation per batch), so encoding one token never depends on the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sae_lab.sae.base import MemberSAE


class BatchTopKSAE(MemberSAE):
    architecture = "batchtopk"
    support_certificate = True

    def __init__(self, d_model: int, d_sae: int, member_seeds: Sequence[int], k: int, tied: bool = False,
                 threshold_momentum: float = 0.9) -> None:
        super().__init__(d_model, d_sae, member_seeds, tied=tied)
        if not 1 <= k <= d_sae:
            raise ValueError(f"k={k} must be between 1 and d_sae={d_sae}.")
        self.k = int(k)
        self.threshold_momentum = float(threshold_momentum)
        self.register_buffer("threshold", torch.zeros(len(self.member_seeds)))
        # per member, like every other state: member_state() slices the leading axis
        self.register_buffer("threshold_steps", torch.zeros(len(self.member_seeds), dtype=torch.long))

    def batch_select(self, pre: torch.Tensor) -> torch.Tensor:
        """z with exactly k·B non-negative entries kept per member across the batch [E, B, m]."""
        n_members, batch, d_sae = pre.shape
        acts = pre.relu().reshape(n_members, batch * d_sae)
        values, indices = acts.topk(self.k * batch, dim=-1, sorted=False)
        z = torch.zeros_like(acts).scatter(-1, indices, values).view(n_members, batch, d_sae)
        if self.training:
            self._update_threshold(values.detach())
        return z

    @torch.no_grad()
    def _update_threshold(self, values: torch.Tensor) -> None:
        positive = torch.where(values > 0, values, torch.full_like(values, float("inf")))
        smallest = positive.amin(dim=-1)
        smallest = torch.where(torch.isfinite(smallest), smallest, self.threshold)
        ema = self.threshold_momentum * self.threshold + (1 - self.threshold_momentum) * smallest
        self.threshold.copy_(torch.where(self.threshold_steps == 0, smallest, ema))
        self.threshold_steps += 1

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """Per-token inference: keep activations above the member's learned threshold."""
        return pre * (pre > self.threshold[:, None, None])

    def member_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = self.batch_select(self.pre_activations(x))
        return self.mse(x, self.decode(z)), z

    def extra_cfg(self) -> dict:
        return {**super().extra_cfg(), "k": self.k}
