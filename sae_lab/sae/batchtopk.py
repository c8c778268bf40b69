"""BatchTopK SAE (Bussmann et al. 2024): the k·B largest activations over the whole batch, per member.

Training selects across the batch, so tokens get varying numbers of features with k on average.
Inference uses a per-member threshold learned during training (a running mean of the smallest
selected activation per batch), so encoding one token never depends on the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sae_lab.sae.base import MemberLoss, MemberSAE, SAEConfig
from sae_lab.sae.registry import register


@dataclass
class BatchTopKConfig(SAEConfig):
    threshold_momentum: float = 0.9  # EMA momentum of the inference threshold


@register("batchtopk", BatchTopKConfig)
class BatchTopKSAE(MemberSAE):
    """k (top-level key) activations per token on average over the batch."""

    # SAELens saves a trained BatchTopK as JumpReLU: at inference every feature is cut at the
    # learned threshold, so the export repeats it per feature (as sae_lens's BatchTopK does).
    saelens_architecture = "jumprelu"
    uses_k = True
    support_certificate = True

    def __init__(self, d_model: int, d_sae: int, member_seeds: Sequence[int], k: int | None = None,
                 cfg: BatchTopKConfig | None = None, **options: Any) -> None:
        super().__init__(d_model, d_sae, member_seeds, k=k, cfg=cfg, **options)
        self.threshold_momentum = float(self.cfg.threshold_momentum)
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

    def member_loss(self, x: torch.Tensor) -> MemberLoss:
        z = self.batch_select(self.pre_activations(x))
        return MemberLoss(self.mse(x, self.decode(z)), z)

    @torch.no_grad()
    def reinit_features(self, member: int, indices: torch.Tensor, inputs: torch.Tensor, level: torch.Tensor,
                        optimizer: torch.optim.Optimizer | None = None) -> None:
        # Inference keeps pre-activations above the member's learned threshold: a revived feature
        # must clear it on its own input, or it stays dead at every eval.
        level = torch.maximum(torch.as_tensor(level, device=self.threshold.device), 2 * self.threshold[member])
        super().reinit_features(member, indices, inputs, level, optimizer)

    def member_state(self, member: int) -> dict[str, torch.Tensor]:
        state = super().member_state(member)
        state["threshold"] = self.threshold[member].detach().expand(self.d_sae).clone()
        return state

    @torch.no_grad()
    def load_member_state(self, state: dict[str, torch.Tensor]) -> None:
        super().load_member_state(state)
        theta = state["threshold"].reshape(-1)  # [d_sae]; exports before the SAELens layout held one number
        if not torch.equal(theta, theta[:1].expand_as(theta)):
            raise ValueError("a batchtopk export has one threshold for all features; this one has several.")
        self.threshold.copy_(theta[:1])
        # The step count is training state; only "ever updated" matters (the EMA's first step).
        self.threshold_steps.copy_((theta[:1] > 0).long())
