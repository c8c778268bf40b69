"""Double-Batch K-SVD (Valentin et al.): a dictionary learned by alternating optimisation, no gradients.

Each training step is one DB-KSVD iteration on one batch of samples: matching pursuit codes every
sample with at most k atoms, then every atom is refitted to the error it is responsible for (ksvd_ops).
It sits behind the same dictionary protocol as the SAEs: `decoder()` is the dictionary, `encode` is
the same matching pursuit, and the member axis E holds independent seeds, so every callback, snapshot,
export and report treats it like any other learner.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sae_lab.metrics.consistency import self_consistency
from sae_lab.sae.base import MemberSAE, SAEConfig, SparseCodes
from sae_lab.sae.ksvd_ops import decode_codes, matching_pursuit, reinit_unused, update_dictionary
from sae_lab.sae.registry import register

# Samples per matching-pursuit chunk: the stored correlations [E, chunk, m] stay cache-sized.
MP_CHUNK = 1024


@dataclass
class KSVDConfig(SAEConfig):
    tied: bool = True               # the encoder is matching pursuit on the dictionary itself (must stay true)
    batch_size: int = 2**16         # samples per DB-KSVD iteration (capped by the training set)
    atom_batch: int = 64            # atoms updated together against one residual (the paper's w workers)
    power_iters: int = 4            # power iterations per atom update (warm-started at the current atom)
    # An atom whose |cos| with a lower-numbered atom exceeds this is re-initialised like an unused one
    # (K-SVD's usual clean-up: a duplicate atom is an atom lost); null = only unused atoms.
    duplicate_cos: float | None = 0.95
    # Matryoshka DB-KSVD: group sizes summing to d_sae, fitted in turn to the previous groups' residual,
    # each with an equal share of k; null = one group.
    group_sizes: list[int] | None = None
    # Start a fraction of the atoms at the subject's true atoms (a subject with ground truth, e.g.
    # model=synthetic): the paper's "initialising with a known structure" (§5.4), given as atoms.
    known_fraction: float = 0.0


def uniform_dictionary(seed: int, d_sae: int, d_model: int) -> torch.Tensor:
    """Rows drawn from U(−½, ½) and normalised (the paper's initialisation), from the member's seed only."""
    gen = torch.Generator().manual_seed(int(seed))
    w = torch.rand(d_sae, d_model, generator=gen) - 0.5
    return w / w.norm(dim=-1, keepdim=True)


def duplicates(atoms: torch.Tensor, threshold: float) -> torch.Tensor:
    """[m] bool: atoms whose |cos| with a lower-numbered atom exceeds `threshold` (unit rows [m, d])."""
    cos = (atoms @ atoms.T).abs().triu(diagonal=1)
    return (cos > threshold).any(0)


@register("ksvd", KSVDConfig)
class KSVDSAE(MemberSAE):
    """k (the top-level key) is the number of atoms matching pursuit may use per sample."""

    saelens_architecture = "topk"  # SAELens has no matching pursuit: it loads the nearest one-shot encoder
    uses_k = True
    support_certificate = True
    trains_by_gradient = False

    def __init__(self, d_model: int, d_sae: int, member_seeds: Sequence[int], k: int | None = None,
                 cfg: KSVDConfig | None = None, **options: Any) -> None:
        super().__init__(d_model, d_sae, member_seeds, k=k, cfg=cfg, **options)
        c = self.cfg
        if not c.tied:
            raise ValueError("sae.tied must be true for sae=ksvd: its encoder is matching pursuit on the dictionary.")
        if c.duplicate_cos is not None and not 0 < c.duplicate_cos <= 1:
            raise ValueError(f"sae.duplicate_cos must be null or in (0, 1], got {c.duplicate_cos}.")
        if not 0 <= c.known_fraction <= 1:
            raise ValueError(f"sae.known_fraction must be between 0 and 1, got {c.known_fraction}.")
        for key in ("batch_size", "atom_batch", "power_iters"):
            if getattr(c, key) < 1:
                raise ValueError(f"sae.{key}={getattr(c, key)} must be an integer >= 1.")
        sizes = [int(s) for s in c.group_sizes] if c.group_sizes else [d_sae]
        if sum(sizes) != d_sae or min(sizes) < 1 or len(sizes) > self.k:
            raise ValueError(f"sae.group_sizes={sizes} must be positive, sum to d_sae={d_sae} and number at "
                             f"most k={self.k} groups.")
        self.group_sizes = sizes
        if c.group_sizes:
            self.cfg = dataclasses.replace(c, group_sizes=sizes)
        with torch.no_grad():
            self.W_dec.copy_(torch.stack([uniform_dictionary(s, d_sae, d_model) for s in self.member_seeds]))
        for param in self.parameters():
            param.requires_grad_(False)
        # DB-KSVD iterations done per member: seeds the atom order, and survives checkpoints.
        self.register_buffer("iterations", torch.zeros(self.n_members, dtype=torch.long))

    @torch.no_grad()
    def start_from_truth(self, truth: torch.Tensor) -> int:
        """Set the first round(known_fraction · min(n, d_sae)) atoms of every member to the true atoms
        [n, d_model] with the same numbers; returns how many."""
        n = round(self.cfg.known_fraction * min(len(truth), self.d_sae))
        self.W_dec[:, :n] = torch.nn.functional.normalize(truth[:n].to(self.W_dec), dim=-1)
        return n

    def k_shares(self) -> list[int]:
        """Each group's share of k: equal, the remainder to the first groups."""
        n = len(self.group_sizes)
        return [self.k // n + (i < self.k % n) for i in range(n)]

    def data_batch_size(self, default: int, n_samples: int) -> int:
        """sae.batch_size capped by the data, evened out so that no epoch ends in a sliver of a batch."""
        n_batches = math.ceil(n_samples / min(self.cfg.batch_size, n_samples))
        return math.ceil(n_samples / n_batches)

    def sparse_codes(self, x: torch.Tensor, dictionary: torch.Tensor | None = None, k: int | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Matching-pursuit codes (values, indices) [E, B, k] of x [B, d] or [E, B, d] on `dictionary`
        [E, m, d] (default: the whole dictionary), in sample chunks."""
        gram = self.gram() if dictionary is None else torch.bmm(dictionary, dictionary.transpose(1, 2))
        dictionary = self.W_dec if dictionary is None else dictionary
        out = []
        for start in range(0, x.shape[-2], max(256, MP_CHUNK // self.n_members)):
            chunk = x[..., start:start + max(256, MP_CHUNK // self.n_members), :]
            corr = torch.matmul(chunk, dictionary.transpose(1, 2))  # DᵀY of the chunk, [E, b, m]
            out.append(matching_pursuit(gram, corr, k or self.k))
        return torch.cat([v for v, _ in out], 1), torch.cat([i for _, i in out], 1)

    def gram(self) -> torch.Tensor:
        """DᵀD of the whole dictionary, [E, m, m], kept until the dictionary changes: an eval encodes many
        chunks with one dictionary, and at LM sizes the product costs more than coding a chunk."""
        key = (self.W_dec._version, self.W_dec.data_ptr())
        if getattr(self, "_gram_key", None) != key:
            self._gram, self._gram_key = torch.bmm(self.W_dec, self.W_dec.transpose(1, 2)), key
        return self._gram

    def dense(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        z = values.new_zeros(values.shape[:-1] + (self.d_sae,))
        return z.scatter_add_(-1, indices, values)  # add: unfilled slots (index 0, value 0) must not overwrite

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(*self.sparse_codes(x))

    def dense_codes(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        return self.dense(values, indices)  # encode's own step after sparse_codes, which sparse_forward runs too

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """Codes from the correlations DᵀY [E, B, m] (the pre-activations of a tied, bias-free encoder)."""
        return self.dense(*matching_pursuit(self.gram(), pre, self.k))

    def consistency_codes(self, z: torch.Tensor, x_hat: torch.Tensor | None = None) -> torch.Tensor:
        # the second pass is matching pursuit too; the certificate reads it on the first pass's support
        return self.encode(self.decode(z) if x_hat is None else x_hat)

    def decode_sparse(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        return torch.stack([decode_codes(values[e], indices[e], self.W_dec[e]) for e in range(self.n_members)])

    def sparse_forward(self, x: torch.Tensor) -> SparseCodes:
        values, indices = self.sparse_codes(x)
        x_hat = self.decode_sparse(values, indices)
        v2, i2 = self.sparse_codes(x_hat)
        # x_t on the first pass's support: the second pass's value at the same atom, 0 where it has none
        x_t = ((indices[..., :, None] == i2[..., None, :]) * v2[..., None, :]).sum(-1)
        return SparseCodes(values, indices, x_hat, self_consistency(values, x_t, support_only=True))

    @torch.no_grad()
    def fit_step(self, x: torch.Tensor) -> torch.Tensor:
        """One DB-KSVD iteration on the batch x [B, d] for every member; returns each member's mean
        relative error ‖y − D x‖ / ‖y‖ after the update, [E]."""
        residual = x.expand(self.n_members, *x.shape)
        gens = [torch.Generator().manual_seed(int(s) * 1_000_003 + int(self.iterations[e]))
                for e, s in enumerate(self.member_seeds)]
        unused = []
        start = 0
        for size, k in zip(self.group_sizes, self.k_shares(), strict=True):
            part = self.W_dec[:, start:start + size]  # a view: updates land in W_dec
            values, indices = self.sparse_codes(residual, part.contiguous(), k)
            nexts = []
            for e in range(self.n_members):
                atoms = part[e].clone()
                order = torch.randperm(size, generator=gens[e]).to(x.device)
                res, idle = update_dictionary(atoms, residual[e], values[e], indices[e], order,
                                              self.cfg.atom_batch, self.cfg.power_iters)
                part[e].copy_(atoms)
                nexts.append(res)
                unused.append((e, start, idle, res))
            residual = torch.stack(nexts)  # the next group fits what this one left
            start += size
        errors = (residual.norm(dim=-1) / x.norm(dim=-1).clamp_min(1e-12)).mean(-1)
        for e, offset, idle, res in unused:  # after the error: a revived atom has no coefficients yet
            atoms = self.W_dec[e, offset:offset + len(idle)]
            if self.cfg.duplicate_cos is not None:
                idle = idle | duplicates(atoms, self.cfg.duplicate_cos)
            reinit_unused(atoms, res, idle, gens[e])
        self.iterations += 1
        return errors
