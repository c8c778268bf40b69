"""TopK SAE (Gao et al. 2024): keep the k largest pre-activations per token, ReLU them."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from sae_lab.sae.base import MemberSAE


class TopKSAE(MemberSAE):
    architecture = "topk"
    support_certificate = True

    def __init__(self, d_model: int, d_sae: int, member_seeds: Sequence[int], k: int, tied: bool = False) -> None:
        super().__init__(d_model, d_sae, member_seeds, tied=tied)
        if not 1 <= k <= d_sae:
            raise ValueError(f"k={k} must be between 1 and d_sae={d_sae}.")
        self.k = int(k)

    def select(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values, indices = pre.topk(self.k, dim=-1, sorted=False)
        return values.relu(), indices

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        values, indices = self.select(pre)
        return torch.zeros_like(pre).scatter_(-1, indices, values)

    def decode_sparse(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Decode from the k active (value, index) pairs per token: B·k·d work instead of B·m·d."""
        n_members, batch, k = values.shape
        offsets = torch.arange(n_members, device=indices.device)[:, None, None] * self.d_sae
        x_hat = F.embedding_bag((indices + offsets).reshape(-1, k), self.W_dec.reshape(-1, self.d_model),
                                per_sample_weights=values.reshape(-1, k), mode="sum")
        return x_hat.reshape(n_members, batch, self.d_model) + self.b_dec[:, None, :]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values, indices = self.select(self.pre_activations(x))
        z = torch.zeros(values.shape[:-1] + (self.d_sae,), dtype=values.dtype, device=values.device)
        return z.scatter(-1, indices, values), self.decode_sparse(values, indices)

    def member_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        # The dense code z is built only when a regulariser asks: it costs more than the decode.
        values, indices = self.select(self.pre_activations(x))
        z = None
        if self.want_codes:
            z = torch.zeros(values.shape[:-1] + (self.d_sae,), dtype=values.dtype, device=values.device)
            z = z.scatter(-1, indices, values)
        return self.mse(x, self.decode_sparse(values, indices)), z

    def extra_cfg(self) -> dict:
        return {**super().extra_cfg(), "k": self.k}
