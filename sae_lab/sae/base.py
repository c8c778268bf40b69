"""Shared parameters and math of gradient SAEs with a leading member axis E.

Shape glossary, used the same way in every module of sae_lab.sae:
    E        ensemble members (E = 1 for a plain run)
    B        tokens in a batch (or in an eval chunk)
    d_model  width of the subject's activation (the SAE's input)
    d_sae    dictionary size (number of atoms / features)
    k        active features per token for fixed-k architectures

Every parameter is [E, ...]; members never interact (no shared normalisation, no cross-member
clipping), so an ensemble of E members trains exactly as E solo runs would, only batched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from sae_lab.metrics.consistency import self_consistency
from sae_lab.sae.registry import SAEConfig, config_keys  # noqa: F401 (re-exported: where architectures import them)


class SAEOutput(NamedTuple):
    codes: torch.Tensor   # z [E, B, d_sae]
    x_hat: torch.Tensor   # reconstruction [E, B, d_model]


class MemberLoss(NamedTuple):
    loss: torch.Tensor                # each member's training loss [E]
    codes: torch.Tensor | None        # z [E, B, d_sae], or None when not built (TopK skips it)


class SparseCodes(NamedTuple):
    """Fixed-k codes without the dense [E, B, d_sae] tensor."""
    values: torch.Tensor       # [E, B, k]
    indices: torch.Tensor      # [E, B, k]
    x_hat: torch.Tensor        # [E, B, d_model]
    certificate: torch.Tensor  # latent self-consistency per member [E]


def init_decoder(seed: int, d_sae: int, d_model: int) -> torch.Tensor:
    """Unit-norm random rows [d_sae, d_model] drawn from the member's own seed only."""
    gen = torch.Generator().manual_seed(int(seed))
    w = torch.randn(d_sae, d_model, generator=gen)
    return w / w.norm(dim=-1, keepdim=True)


class MemberSAE(nn.Module):
    """Encoder/decoder with member axis; subclasses define `activation(pre) -> z`.

    Implements the dictionary protocol of docs/extending.md: `decoder()`, `encode(x)`, `reconstruct(x)`,
    `member_seeds`. Architecture keys live in `cfg` (an instance of the class's `config_class`); the
    constructor also takes them as keywords (`TopKSAE(16, 64, [0], k=4, aux_k=8)`).
    """

    architecture: ClassVar[str] = "base"       # set by sae_lab.sae.registry.register
    # The SAELens inference architecture the export declares (its `architecture` in cfg.json).
    saelens_architecture: ClassVar[str] = "standard"
    config_class: ClassVar[type[SAEConfig]] = SAEConfig
    uses_k: ClassVar[bool] = False             # reads the top-level `k`
    # Decoder rows are renormalised after every step (TopK family); penalty-based SAEs instead
    # weight their penalty by row norms and leave the norms free.
    unit_norm_decoder: ClassVar[bool] = True
    # TopK-style encoders compute the self-consistency certificate on the first pass's support.
    support_certificate: ClassVar[bool] = False
    # Set by the trainer when a regulariser needs the dense codes z from member_loss.
    want_codes: bool = False
    # False for learners that update themselves without gradients (DB-KSVD): SAEModule then calls
    # `fit_step(batch)` instead of backward + Adam.
    trains_by_gradient: ClassVar[bool] = True

    def __init__(self, d_model: int, d_sae: int, member_seeds: Sequence[int], k: int | None = None,
                 cfg: SAEConfig | None = None, **options: Any) -> None:
        super().__init__()
        if d_sae < 1:
            raise ValueError(f"d_sae={d_sae} must be at least 1.")
        if self.uses_k and (k is None or not 1 <= k <= d_sae):
            raise ValueError(f"k={k} must be between 1 and d_sae={d_sae}.")
        self.cfg = self.make_config(cfg, options)
        self.k = int(k) if self.uses_k else None
        self.d_model, self.d_sae = int(d_model), int(d_sae)
        self.member_seeds = [int(s) for s in member_seeds]
        self.tied = bool(self.cfg.tied)
        w_dec = torch.stack([init_decoder(s, d_sae, d_model) for s in self.member_seeds])
        self.W_dec = nn.Parameter(w_dec)                                   # [E, d_sae, d_model]
        if not self.tied:
            # Stored feature-major like W_dec, [E, d_sae, d_model]: all members' encoders are then one
            # contiguous [E·d_sae, d_model] matrix, so neither the encoder GEMM nor its gradient needs
            # a transposed copy. `encoder_weight` gives the usual [E, d_model, d_sae] view.
            self.W_enc = nn.Parameter(w_dec.clone())
        self.b_enc = nn.Parameter(torch.zeros(len(self.member_seeds), d_sae))   # [E, d_sae]
        self.b_dec = nn.Parameter(torch.zeros(len(self.member_seeds), d_model))  # [E, d_model]

    @classmethod
    def make_config(cls, cfg: SAEConfig | None, options: dict[str, Any]) -> SAEConfig:
        """`cfg` (or the defaults) with `options` applied; an unknown key is one sentence naming it."""
        keys = config_keys(cls.config_class)
        for key in options:
            if key not in keys:
                raise ValueError(f"sae.{key} does not apply to sae={cls.architecture}; its keys are "
                                 f"{', '.join('sae.' + k for k in keys)}.")
        base = cfg if cfg is not None else cls.config_class()
        return dataclasses.replace(base, **{k: v for k, v in options.items() if v is not None})

    @property
    def encoder_rows(self) -> torch.Tensor:
        """Encoder directions as rows, [E, d_sae, d_model]; with `tied`, the decoder itself (one
        parameter, so tied stays tied)."""
        return self.W_dec if self.tied else self.W_enc

    @property
    def encoder_weight(self) -> torch.Tensor:
        """[E, d_model, d_sae] (SAELens orientation, pre = x @ W_enc), a view of `encoder_rows`."""
        return self.encoder_rows.transpose(1, 2)

    @property
    def n_members(self) -> int:
        return len(self.member_seeds)

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, d_model] (shared by all members) or [E, B, d_model] -> [E, B, d_sae] (maybe a view)."""
        rows = self.encoder_rows
        if x.dim() == 3:
            return torch.baddbmm(self.b_enc[:, None, :], x - self.b_dec[:, None, :], rows.transpose(1, 2))
        # Shared input: (x - b_dec) W = x W - b_dec W, so all members are one [B, d_model] x
        # [d_model, E·d_sae] GEMM with the bias folded in, faster on CPU than E batched products.
        n_members, d_sae, d_model = rows.shape
        bias = self.b_enc - torch.bmm(rows, self.b_dec[:, :, None])[..., 0]
        pre = torch.addmm(bias.reshape(1, -1), x, rows.reshape(n_members * d_sae, d_model).t())
        return pre.view(len(x), n_members, d_sae).transpose(0, 1)

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """Codes z [E, B, d_sae] from pre-activations [E, B, d_sae] (per token, as at inference)."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.pre_activations(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.b_dec[:, None, :], z, self.W_dec)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def forward(self, x: torch.Tensor) -> SAEOutput:
        z = self.encode(x)
        return SAEOutput(z, self.decode(z))

    def sparse_forward(self, x: torch.Tensor) -> SparseCodes | None:
        """Fixed-k codes (lets evaluation skip the dense [E, B, d_sae] code); None where k varies."""
        return None

    def dense_codes(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor | None:
        """The code z [E, B, d_sae] that `encode(x)` gives, bit for bit, from `sparse_forward(x)`'s values
        and indices, so `decode` of it is `reconstruct(x)` without a second encode; None where the
        architecture does not promise that."""
        return None

    def decoder(self) -> torch.Tensor:
        """Dictionary atoms as rows, [E, d_sae, d_model]."""
        return self.W_dec.detach()

    def member_loss(self, x: torch.Tensor) -> MemberLoss:
        """Each member's training loss and the codes. Here the mean squared reconstruction error;
        architectures add their penalties."""
        z, x_hat = self(x)
        return MemberLoss(self.mse(x, x_hat), z)

    def fit_step(self, x: torch.Tensor) -> torch.Tensor:
        """One training update on the batch x [B, d_model] for learners with `trains_by_gradient` False;
        returns each member's training loss [E] (for logging only)."""
        raise NotImplementedError(f"sae={self.architecture} trains by gradient; it has no fit_step.")

    def data_batch_size(self, default: int, n_samples: int) -> int:
        """Training samples per step, given the top-level `batch_size` and the training-set size; learners
        that need larger batches (DB-KSVD) override it."""
        return default

    def consistency_codes(self, z: torch.Tensor, x_hat: torch.Tensor | None = None) -> torch.Tensor:
        """x_t = σ(enc(x̂)), x̂ = dec(z) (pass it when already computed); TopK-style encoders use ReLU
        of the second pass's pre-activations (the certificate reads only the first pass's support)."""
        pre = self.pre_activations(self.decode(z) if x_hat is None else x_hat)
        return pre.relu() if self.support_certificate else self.activation(pre)

    def certificate(self, z: torch.Tensor, x_hat: torch.Tensor | None = None) -> torch.Tensor:
        """L_cert per member, [E] (latent self-consistency, docs/metrics.md)."""
        return self_consistency(z, self.consistency_codes(z, x_hat), self.support_certificate)

    def mse(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """Each member's mean squared reconstruction error, [E]."""
        return (x_hat - x).pow(2).mean(dim=(-2, -1))

    def after_step(self) -> None:
        """Called after every optimiser step (renormalisation, threshold bookkeeping, ...)."""
        if self.unit_norm_decoder:
            self.normalize_decoder()

    @torch.no_grad()
    def fix_decoder(self, truth: torch.Tensor) -> None:
        """Oracle decoder: every member's decoder rows become the true atoms [d_sae, d_model] (unit norm)
        and its bias 0, and neither is trained from then on."""
        if tuple(truth.shape) != (self.d_sae, self.d_model):
            raise ValueError(f"sae.oracle_decoder needs d_sae equal to the subject's {len(truth)} true atoms, "
                             f"got d_sae={self.d_sae}.")
        self.W_dec.copy_(nn.functional.normalize(truth.to(self.W_dec), dim=-1).expand_as(self.W_dec))
        self.b_dec.zero_()
        self.W_dec.requires_grad_(False)
        self.b_dec.requires_grad_(False)

    @torch.no_grad()
    def remove_parallel_grad(self) -> None:
        """Drop the gradient component along each decoder row, which renormalising would undo."""
        if self.unit_norm_decoder and not self.tied and self.W_dec.grad is not None:
            parallel = (self.W_dec.grad * self.W_dec).sum(-1, keepdim=True)
            self.W_dec.grad -= parallel * self.W_dec

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        self.W_dec /= self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8)

    def feature_parameters(self) -> list[nn.Parameter]:
        """Parameters indexed [member, feature, ...]: what re-initialising a feature must reset."""
        return [self.W_dec, self.b_enc] + ([] if self.tied else [self.W_enc])

    @torch.no_grad()
    def reinit_features(self, member: int, indices: torch.Tensor, inputs: torch.Tensor, level: torch.Tensor,
                        optimizer: torch.optim.Optimizer | None = None) -> None:
        """Point `member`'s features `indices` [n] at `inputs` [n, d_model]: decoder row = the
        normalised b_dec-centred input, encoder row scaled so the feature's pre-activation on its
        input is `level`, encoder bias 0, and the optimizer's moments of every feature parameter
        zeroed. Architectures with per-feature state (thresholds) extend `reinit_state`."""
        # Centred like the encoder's input: the shared mean would make a new feature fire everywhere.
        centred = inputs - self.b_dec[member]
        norms = centred.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        directions = centred / norms
        self.W_dec[member, indices] = directions
        if not self.tied:
            self.W_enc[member, indices] = directions * (level / norms)
        self.b_enc[member, indices] = 0.0
        self.reinit_state(member, indices, level)
        if optimizer is not None:
            for param in self.feature_parameters():
                state = optimizer.state.get(param, {})
                for key in ("exp_avg", "exp_avg_sq"):
                    if key in state:
                        state[key][member, indices] = 0.0

    def reinit_state(self, member: int, indices: torch.Tensor, level: torch.Tensor) -> None:
        """Per-feature state beyond the weights (none here)."""

    def member_state(self, member: int) -> dict[str, torch.Tensor]:
        """One member's inference weights in SAELens layout (W_enc [d_model, d_sae], W_dec [d_sae, d_model],
        b_enc, b_dec); architectures add what their SAELens class loads (threshold). SAELens loads
        strictly, so training-only state (step counters) stays in the checkpoint."""
        return {"W_enc": self.encoder_weight[member].detach().contiguous(), "W_dec": self.W_dec[member].detach(),
                "b_enc": self.b_enc[member].detach(), "b_dec": self.b_dec[member].detach()}

    @torch.no_grad()
    def load_member_state(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of `member_state` for a single-member SAE (what `load_member` calls)."""
        if not self.tied:  # SAELens [d_in, d_sae] -> sae_lab's feature-major [d_sae, d_in]
            self.W_enc.copy_(state["W_enc"].T[None])
        for name in ("W_dec", "b_enc", "b_dec"):
            getattr(self, name).copy_(state[name][None])

    def export_cfg(self) -> dict[str, Any]:
        """The architecture's keys for cfg.json: its config, plus k where it reads k."""
        return {**dataclasses.asdict(self.cfg), **({"k": self.k} if self.uses_k else {})}
