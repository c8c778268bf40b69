"""Activation spectra and dictionary health beyond reconstruction (docs/metrics.md)."""

from __future__ import annotations

import math

import torch


def _centred(x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    return x - x.mean(0, keepdim=True)


def effective_rank(x: torch.Tensor) -> float:
    """exp(-Σ σ̄ log σ̄), σ̄ = σ / Σσ, of the mean-centred activation matrix (Roy & Vetterli 2007)."""
    s = torch.linalg.svdvals(_centred(x))
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def covariance_eigenvalues(x: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of the centred covariance, descending (σ² / n)."""
    return torch.linalg.svdvals(_centred(x)).pow(2) / len(x)


def participation_ratio(x: torch.Tensor, deflate: bool = False) -> float:
    """(Σλ)² / Σλ²; `deflate` drops the top eigenvalue first."""
    lam = covariance_eigenvalues(x)
    if deflate:
        lam = lam[1:]
    return float(lam.sum() ** 2 / lam.pow(2).sum())


def coherence(decoder: torch.Tensor, chunk_size: int = 2048) -> tuple[torch.Tensor, float]:
    """Per-atom c_i = max_{j≠i} |<d_i, d_j>| and RMS = sqrt((1/m²) Σ_{i≠j} <d_i, d_j>²), unit rows.
    In row chunks, so a 16,384-atom dictionary needs chunk_size × 16,384 doubles of scratch, not m²."""
    d = decoder.double()
    d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    m = len(d)
    per_atom = torch.empty(m, dtype=d.dtype)
    total = 0.0
    for start in range(0, m, chunk_size):
        gram = d[start:start + chunk_size] @ d.T
        rows = torch.arange(len(gram))
        gram[rows, rows + start] = 0.0  # the atom with itself
        per_atom[start:start + len(gram)] = gram.abs().amax(dim=1)
        total += float(gram.pow(2).sum())
    return per_atom, math.sqrt(total / m**2)


def usage_rates(counts: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """u_i = fraction of eval tokens on which feature i fires."""
    return counts.double() / n_tokens


def dead_fraction_by_rate(counts: torch.Tensor, n_tokens: int, threshold: float = 1e-4) -> float:
    return float((usage_rates(counts, n_tokens) < threshold).double().mean())


def _distribution(counts: torch.Tensor) -> torch.Tensor:
    c = counts.double()
    return c / c.sum()


def usage_entropy(counts: torch.Tensor) -> float:
    """-Σ p log p / log m with p_i = u_i / Σu (1 = all features used equally)."""
    p = _distribution(counts)
    nz = p[p > 0]
    return float(-(nz * nz.log()).sum() / math.log(len(p)))


def rate_proxy_bits(l0: float, counts: torch.Tensor, value_bits: float = 8.0) -> float:
    """L0 × (H_idx + 8): H_idx the entropy in bits of the active-index distribution."""
    p = _distribution(counts)
    nz = p[p > 0]
    return float(l0 * (-(nz * nz.log2()).sum() + value_bits))
