"""Pure metric functions of tensors, each formula of docs/metrics.md exactly once."""

from sae_lab.metrics.reconstruction import (
    active_per_token,
    alive_fraction,
    cosine_sim,
    firing_counts,
    firing_counts_sparse,
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
    "active_per_token", "alive_fraction", "cosine_sim", "firing_counts", "firing_counts_sparse", "fvu", "l0",
    "mse_mean",
    "r_squared", "reconstruction_metrics", "relative_error_norm", "sse_per_token", "sst_per_token",
    "variance_explained_per_dim",
]

from sae_lab.metrics.agreement import (  # noqa: E402
    abs_cosine,
    activation_hungarian,
    basis_overlap,
    decoder_hungarian,
    firing_overlap_hungarian,
    live_only_hungarian,
    live_only_mmcs,
    mmcs,
    random_baseline_mmcs,
    shared_latent_fraction,
    signed_hungarian_mean,
    subspace_baseline,
    subspace_overlap,
)
from sae_lab.metrics.evt import evt_null  # noqa: E402
from sae_lab.metrics.sparse_matching import sparse_hungarian  # noqa: E402
from sae_lab.metrics.spectrum import (  # noqa: E402
    coherence,
    dead_fraction_by_rate,
    effective_rank,
    participation_ratio,
    rate_proxy_bits,
    usage_entropy,
)
from sae_lab.metrics.statistics import (  # noqa: E402
    bootstrap_seed_ci,
    equivalent_to_null,
    pair_matrix,
    pair_values,
    permutation_test,
)

__all__ += [
    "abs_cosine", "activation_hungarian", "basis_overlap", "bootstrap_seed_ci", "coherence", "dead_fraction_by_rate",
    "decoder_hungarian", "effective_rank", "equivalent_to_null", "evt_null", "firing_overlap_hungarian",
    "live_only_hungarian", "live_only_mmcs", "mmcs", "pair_matrix", "pair_values", "participation_ratio",
    "permutation_test",
    "random_baseline_mmcs", "rate_proxy_bits", "shared_latent_fraction", "signed_hungarian_mean", "sparse_hungarian",
    "subspace_baseline", "subspace_overlap", "usage_entropy",
]
