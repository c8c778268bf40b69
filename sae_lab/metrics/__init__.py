"""Pure metric functions of tensors, each formula of METRICS.md exactly once."""

from sae_lab.metrics.reconstruction import (
    active_per_token,
    alive_fraction,
    cosine_sim,
    firing_counts,
    fvu,
    l0,
    mse_mean,
    r_squared,
    reconstruction_metrics,
    relative_error_norm,
    sse_per_token,
    sst_per_token,
    variance_explained_per_dim,
)

__all__ = [
    "active_per_token", "alive_fraction", "cosine_sim", "firing_counts", "fvu", "l0", "mse_mean",
    "r_squared", "reconstruction_metrics", "relative_error_norm", "sse_per_token", "sst_per_token",
    "variance_explained_per_dim",
]
