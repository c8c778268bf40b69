"""Reconstruction and dictionary-health metrics (docs/metrics.md, "Reconstruction and dictionary health").

Pure functions of tensors. `x` is [N, d]; `x_hat` is [..., N, d] (leading axes, e.g. the member
axis E, are kept in the result); feature activations `z` are [..., N, m].
"""

from __future__ import annotations

import torch


def _residual(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    return x.to(x_hat.dtype) - x_hat


def mse_mean(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean over tokens and dimensions of (x - x_hat)^2."""
    return _residual(x, x_hat).pow(2).mean(dim=(-2, -1))


def sse_per_token(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """SSE / N with SSE = sum_t ||x_t - x_hat_t||^2."""
    return _residual(x, x_hat).pow(2).sum(-1).mean(-1)


def sst_per_token(x: torch.Tensor) -> torch.Tensor:
    """SST / N with SST = sum_t ||x_t - mean(x)||^2 (mean over the eval set)."""
    return (x - x.mean(0, keepdim=True)).pow(2).sum(-1).mean(-1)


def fvu(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Fraction of variance unexplained, SSE / SST."""
    return sse_per_token(x, x_hat) / sst_per_token(x).to(x_hat.dtype)


def r_squared(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """R^2 = 1 - SSE/SST."""
    return 1 - fvu(x, x_hat)


def variance_explained_per_dim(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """1 - (1/d) sum_j var(x_j - x_hat_j) / var(x_j) (population variances)."""
    resid_var = _residual(x, x_hat).var(dim=-2, unbiased=False)
    return 1 - (resid_var / x.var(dim=0, unbiased=False).to(x_hat.dtype)).mean(-1)


def cosine_sim(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean over tokens of cos(x, x_hat)."""
    return torch.nn.functional.cosine_similarity(x.to(x_hat.dtype).expand_as(x_hat), x_hat, dim=-1).mean(-1)


def relative_error_norm(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean over tokens of ||x - x_hat|| / ||x||."""
    return (_residual(x, x_hat).norm(dim=-1) / x.norm(dim=-1).to(x_hat.dtype)).mean(-1)


def active_per_token(z: torch.Tensor) -> torch.Tensor:
    """Number of non-zero features of each token, [..., N]."""
    # Summing a float mask is ~8x faster on CPU than reducing a bool tensor.
    return (z != 0).to(z.dtype).sum(-1).round().long()


def firing_counts(z: torch.Tensor) -> torch.Tensor:
    """Number of tokens on which each feature is non-zero, [..., m]."""
    exact = torch.float32 if z.shape[-2] < 2**24 else torch.float64  # float32 counts exactly below 2^24
    return (z != 0).to(exact).sum(-2).round().long()


def firing_counts_sparse(values: torch.Tensor, indices: torch.Tensor, d_sae: int) -> torch.Tensor:
    """`firing_counts` from (value, index) pairs [..., N, k] of a sparse code, [..., d_sae]."""
    lead = values.shape[:-2]
    fired = (values != 0).to(torch.float32).reshape(*lead, -1)
    counts = torch.zeros(*lead, d_sae, dtype=torch.float32, device=values.device)
    return counts.scatter_add_(-1, indices.reshape(*lead, -1), fired).round().long()


def l0(active: torch.Tensor) -> torch.Tensor:
    """Mean number of non-zero features per token, from `active_per_token`."""
    return active.float().mean(-1)


def alive_fraction(counts: torch.Tensor) -> torch.Tensor:
    """Fraction of features non-zero on at least one eval token, from `firing_counts`."""
    return (counts > 0).float().mean(-1)


def reconstruction_metrics(x: torch.Tensor, x_hat: torch.Tensor, active: torch.Tensor,
                           counts: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every per-member number logged at an eval epoch, keyed by its metrics.csv column."""
    return {
        "mse_mean": mse_mean(x, x_hat),
        "fvu": fvu(x, x_hat),
        "r2": r_squared(x, x_hat),
        "sse_per_token": sse_per_token(x, x_hat),
        "sst_per_token": sst_per_token(x).expand(x_hat.shape[:-2]),
        "var_explained_dim": variance_explained_per_dim(x, x_hat),
        "cos_sim": cosine_sim(x, x_hat),
        "rel_error_norm": relative_error_norm(x, x_hat),
        "l0": l0(active),
        "alive_frac": alive_fraction(counts),
    }
