"""Evaluation of every member on an eval set: reconstruction and health metrics, firing counts.

Plain computation on the dictionary protocol (no Lightning): the eval callback, tests and notebooks
call `evaluate_members` the same way.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from sae_lab.metrics import active_per_token, firing_counts, firing_counts_sparse, reconstruction_metrics
from sae_lab.metrics.spectrum import rate_proxy_bits
from sae_lab.sae.base import MemberSAE


class EvalResult(NamedTuple):
    metrics: dict[str, torch.Tensor]  # one [E] tensor per metric name (metrics.csv columns)
    firing_counts: torch.Tensor       # tokens each feature fired on, [E, d_sae]


@torch.no_grad()
def evaluate_members(sae: MemberSAE, x: torch.Tensor, chunk_size: int = 4096) -> EvalResult:
    """Metrics and firing counts of every member on the eval set `x` [N, d_model]."""
    x_hats, actives, certs, counts = [], [], [], None
    chunk_size = max(256, chunk_size // sae.n_members)  # keep [E, chunk, d_sae] scratch near cache size
    for start in range(0, len(x), chunk_size):
        chunk = x[start:start + chunk_size]
        sparse = sae.sparse_forward(chunk)
        if sparse is not None:  # fixed-k codes: never build the dense [E, B, d_sae] tensor
            x_hat, cert = sparse.x_hat, sparse.certificate
            active = active_per_token(sparse.values)
            c = firing_counts_sparse(sparse.values, sparse.indices, sae.d_sae)
        else:
            z, x_hat = sae(chunk)
            active, c, cert = active_per_token(z), firing_counts(z), sae.certificate(z, x_hat)
        x_hats.append(x_hat)
        actives.append(active)
        certs.append(cert * len(chunk))
        counts = c if counts is None else counts + c
    if counts is None:
        raise ValueError("the eval set is empty")
    x_hat, active = torch.cat(x_hats, dim=1), torch.cat(actives, dim=1)
    # One member at a time: [N, d_model] blocks stay cache-sized (on [E, N, d_model] at once the
    # metrics cost ~1.7x more per member on CPU).
    per_member = [reconstruction_metrics(x, x_hat[e], active[e], counts[e]) for e in range(sae.n_members)]
    metrics = {name: torch.stack([m[name] for m in per_member]) for name in per_member[0]}
    metrics["certificate"] = torch.stack(certs).sum(0) / len(x)  # token-weighted mean over chunks
    metrics["rate_proxy"] = torch.tensor([rate_proxy_bits(float(metrics["l0"][e]), counts[e])
                                          for e in range(sae.n_members)])
    return EvalResult(metrics, counts)
