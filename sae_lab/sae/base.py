"""Shared parameters and math of gradient SAEs with a leading member axis E.

Every parameter is [E, ...]; members never interact (no shared normalisation, no cross-member
clipping), so an ensemble of E members trains exactly as E solo runs would, only batched.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sae_lab.metrics.consistency import self_consistency


def init_decoder(seed: int, d_sae: int, d_model: int) -> torch.Tensor:
    """Unit-norm random rows [d_sae, d_model] drawn from the member's own seed only."""
    gen = torch.Generator().manual_seed(int(seed))
    w = torch.randn(d_sae, d_model, generator=gen)
    return w / w.norm(dim=-1, keepdim=True)


class MemberSAE(nn.Module):
    """Encoder/decoder with member axis; subclasses define `activation(pre) -> z`.

    Implements the dictionary protocol of DESIGN.md: `decoder()`, `encode(x)`, `reconstruct(x)`,
    `member_seeds`.
    """

    architecture: str = "base"
    # Decoder rows are renormalised after every step (TopK family); penalty-based SAEs instead
    # weight their penalty by row norms and leave the norms free.
    unit_norm_decoder: bool = True
    # TopK-style encoders compute the self-consistency certificate on the first pass's support.
    support_certificate: bool = False
    # Set by the trainer when a regulariser needs the dense codes z from member_loss.
    want_codes: bool = False

    def __init__(self, d_model: int, d_sae: int, member_seeds: Sequence[int], tied: bool = False) -> None:
        super().__init__()
        if d_sae < 1:
            raise ValueError(f"d_sae={d_sae} must be at least 1.")
        self.d_model, self.d_sae = int(d_model), int(d_sae)
        self.member_seeds = [int(s) for s in member_seeds]
        self.tied = bool(tied)
        w_dec = torch.stack([init_decoder(s, d_sae, d_model) for s in self.member_seeds])
        self.W_dec = nn.Parameter(w_dec)                                   # [E, m, d]
        if not self.tied:
            # Stored feature-major like W_dec, [E, m, d]: all members' encoders are then one
            # contiguous [E·m, d] matrix, so neither the encoder GEMM nor its gradient needs a
            # transposed copy. `encoder_weight` gives the usual [E, d, m] view.
            self.W_enc = nn.Parameter(w_dec.clone())                         # [E, m, d]
        self.b_enc = nn.Parameter(torch.zeros(len(self.member_seeds), d_sae))
        self.b_dec = nn.Parameter(torch.zeros(len(self.member_seeds), d_model))

    @property
    def encoder_rows(self) -> torch.Tensor:
        """Encoder directions as rows, [E, m, d]; with `tied`, the decoder itself (one parameter,
        so tied stays tied)."""
        return self.W_dec if self.tied else self.W_enc

    @property
    def encoder_weight(self) -> torch.Tensor:
        """[E, d, m] (SAELens orientation, pre = x @ W_enc), a view of `encoder_rows`."""
        return self.encoder_rows.transpose(1, 2)

    @property
    def n_members(self) -> int:
        return len(self.member_seeds)

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, d] (shared by all members) or [E, B, d] -> [E, B, d_sae] (possibly a strided view)."""
        rows = self.encoder_rows
        if x.dim() == 3:
            return torch.baddbmm(self.b_enc[:, None, :], x - self.b_dec[:, None, :], rows.transpose(1, 2))
        # Shared input: (x - b_dec) W = x W - b_dec W, so all members are one [B, d] x [d, E·m] GEMM
        # with the bias folded in, faster on CPU than E batched products.
        n_members, d_sae, d_model = rows.shape
        bias = self.b_enc - torch.bmm(rows, self.b_dec[:, :, None])[..., 0]
        pre = torch.addmm(bias.reshape(1, -1), x, rows.reshape(n_members * d_sae, d_model).t())
        return pre.view(len(x), n_members, d_sae).transpose(0, 1)

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.pre_activations(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.b_dec[:, None, :], z, self.W_dec)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decode(z)

    def sparse_forward(self, x: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """(values [E,B,k], indices [E,B,k], x̂, certificate [E]) for fixed-k codes; None otherwise.
        Lets evaluation skip the dense [E, B, d_sae] code where k is fixed."""
        return None

    def decoder(self) -> torch.Tensor:
        """Dictionary atoms as rows, [E, d_sae, d_model]."""
        return self.W_dec.detach()

    def member_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(each member's training loss [E], the codes z [E, B, m] or None when not built).
        Here the mean squared reconstruction error; architectures add their penalties."""
        z, x_hat = self(x)
        return self.mse(x, x_hat), z

    def consistency_codes(self, z: torch.Tensor, x_hat: torch.Tensor | None = None) -> torch.Tensor:
        """x_t = σ(enc(x̂)), x̂ = dec(z) (pass it when already computed); TopK-style encoders use ReLU
        of the second pass's pre-activations (the certificate reads only the first pass's support)."""
        pre = self.pre_activations(self.decode(z) if x_hat is None else x_hat)
        return pre.relu() if self.support_certificate else self.activation(pre)

    def certificate(self, z: torch.Tensor, x_hat: torch.Tensor | None = None) -> torch.Tensor:
        """L_cert per member, [E] (METRICS.md, latent self-consistency)."""
        return self_consistency(z, self.consistency_codes(z, x_hat), self.support_certificate)

    def mse(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """Each member's mean squared reconstruction error, [E]."""
        return (x_hat - x).pow(2).mean(dim=(-2, -1))

    def after_step(self) -> None:
        """Called after every optimiser step (renormalisation, threshold bookkeeping, ...)."""
        if self.unit_norm_decoder:
            self.normalize_decoder()

    @torch.no_grad()
    def remove_parallel_grad(self) -> None:
        """Drop the gradient component along each decoder row, which renormalising would undo."""
        if self.unit_norm_decoder and not self.tied and self.W_dec.grad is not None:
            parallel = (self.W_dec.grad * self.W_dec).sum(-1, keepdim=True)
            self.W_dec.grad -= parallel * self.W_dec

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        self.W_dec /= self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8)

    def member_state(self, member: int) -> dict[str, torch.Tensor]:
        """One member's weights in SAELens layout (W_enc [d_in, d_sae], W_dec [d_sae, d_in]) plus any
        per-member parameters or buffers of the architecture (thresholds)."""
        state = {name: t[member].detach() for name, t in self.state_dict().items()}
        state["W_enc"] = self.encoder_weight[member].detach().contiguous()
        return state

    def extra_cfg(self) -> dict:
        """Architecture-specific fields for the SAELens cfg.json."""
        return {"tied": self.tied} if self.tied else {}
