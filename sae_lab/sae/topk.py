"""TopK SAE (Gao et al. 2024): keep the k largest pre-activations per token, ReLU them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from sae_lab.metrics.consistency import self_consistency
from sae_lab.sae.base import MemberLoss, MemberSAE, SAEConfig, SAEOutput, SparseCodes
from sae_lab.sae.registry import register

# The auxiliary decode goes dense when a token has more than d_sae / DENSE_DECODE_FRACTION codes.
DENSE_DECODE_FRACTION = 8


@dataclass
class TopKConfig(SAEConfig):
    aux_k: int | None = None        # AuxK loss on the top aux_k dead latents (Gao et al. 2024); null = off
    aux_coefficient: float = 1 / 32  # weight of the AuxK loss
    dead_steps: int = 250           # steps without firing before a latent counts as dead (5 mod113 epochs)


@register("topk", TopKConfig)
class TopKSAE(MemberSAE):
    """k is the top-level `k` key."""

    saelens_architecture = "topk"
    uses_k = True
    support_certificate = True

    def __init__(self, d_model: int, d_sae: int, member_seeds: Sequence[int], k: int | None = None,
                 cfg: TopKConfig | None = None, **options: Any) -> None:
        super().__init__(d_model, d_sae, member_seeds, k=k, cfg=cfg, **options)
        aux_k = self.cfg.aux_k
        if aux_k is not None and not 1 <= aux_k <= d_sae:
            raise ValueError(f"sae.aux_k={aux_k} must be between 1 and d_sae={d_sae} (or null to turn AuxK off).")
        self.aux_k, self.aux_coefficient, self.dead_steps = aux_k, float(self.cfg.aux_coefficient), \
            int(self.cfg.dead_steps)
        if aux_k:
            # training steps since each feature last fired, per member
            self.register_buffer("steps_since_fired", torch.zeros(len(self.member_seeds), d_sae, dtype=torch.long))

    def select(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values, indices = pre.topk(self.k, dim=-1, sorted=False)
        return values.relu(), indices

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        values, indices = self.select(pre)
        return torch.zeros_like(pre).scatter_(-1, indices, values)

    def dense_codes(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        # `activation`'s zeros_like(pre) has the layout pre_activations gives a shared [B, d_model]
        # input ([B, E, d_sae] transposed); the same layout here lets decode run the same product.
        n_members, batch, _ = values.shape
        z = values.new_zeros(batch, n_members, self.d_sae).transpose(0, 1)
        return z.scatter_(-1, indices, values)

    def decode_sparse(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Decode from the k active (value, index) pairs per token: B·k·d work instead of B·m·d."""
        n_members, batch, k = values.shape
        offsets = torch.arange(n_members, device=indices.device)[:, None, None] * self.d_sae
        x_hat = F.embedding_bag((indices + offsets).reshape(-1, k), self.W_dec.reshape(-1, self.d_model),
                                per_sample_weights=values.reshape(-1, k), mode="sum")
        return x_hat.reshape(n_members, batch, self.d_model) + self.b_dec[:, None, :]

    def forward(self, x: torch.Tensor) -> SAEOutput:
        values, indices = self.select(self.pre_activations(x))
        z = torch.zeros(values.shape[:-1] + (self.d_sae,), dtype=values.dtype, device=values.device)
        return SAEOutput(z.scatter(-1, indices, values), self.decode_sparse(values, indices))

    def sparse_forward(self, x: torch.Tensor) -> SparseCodes:
        values, indices = self.select(self.pre_activations(x))
        x_hat = self.decode_sparse(values, indices)
        # Second pass read on the first pass's support only: gather k of d_sae pre-activations.
        x_t = self.pre_activations(x_hat).gather(-1, indices).relu()
        return SparseCodes(values, indices, x_hat, self_consistency(values, x_t, support_only=True))

    def member_loss(self, x: torch.Tensor) -> MemberLoss:
        # The dense code z is built only when a regulariser asks: it costs more than the decode.
        pre = self.pre_activations(x)
        values, indices = self.select(pre)
        z = None
        if self.want_codes:
            z = torch.zeros(values.shape[:-1] + (self.d_sae,), dtype=values.dtype, device=values.device)
            z = z.scatter(-1, indices, values)
        x_hat = self.decode_sparse(values, indices)
        loss = self.mse(x, x_hat)
        if self.aux_k and self.training:
            loss = loss + self.aux_coefficient * self.aux_loss(x, x_hat, pre, values, indices)
        return MemberLoss(loss, z)

    def aux_loss(self, x: torch.Tensor, x_hat: torch.Tensor, pre: torch.Tensor, values: torch.Tensor,
                 indices: torch.Tensor) -> torch.Tensor:
        """AuxK (Gao et al. 2024): the top aux_k dead latents reconstruct the residual x − x̂, [E].
        Dead = not fired for `dead_steps` training steps."""
        with torch.no_grad():
            fired = torch.zeros(self.steps_since_fired.shape, device=x.device).scatter_reduce(
                -1, indices.flatten(1), (values > 0).flatten(1).float(), "amax") > 0
            self.steps_since_fired.add_(1).masked_fill_(fired, 0)
            dead = self.steps_since_fired > self.dead_steps
        n_dead = int(dead.sum(-1).max())
        if n_dead == 0:
            return torch.zeros(len(self.member_seeds), device=x.device)
        aux_values, aux_indices = pre.masked_fill(~dead[:, None, :], float("-inf")).topk(
            min(self.aux_k, n_dead), dim=-1, sorted=False)
        aux_values = aux_values.relu()
        if aux_values.shape[-1] * DENSE_DECODE_FRACTION > self.d_sae:
            # Many codes per token: embedding_bag's backward (a scatter-add per code) loses to one dense
            # batched product from about d_sae / 8 codes on (`benchmarks/step_floor.py --aux-ks`).
            residual_hat = torch.bmm(torch.zeros_like(pre).scatter(-1, aux_indices, aux_values), self.W_dec)
        else:
            residual_hat = self.decode_sparse(aux_values, aux_indices) - self.b_dec[:, None, :]
        return self.mse((x - x_hat).detach(), residual_hat)
