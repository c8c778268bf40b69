"""Evaluation of every member on an eval set: reconstruction and health metrics, firing counts.

Plain computation on the dictionary protocol (no Lightning): the eval callback, tests and notebooks
call `evaluate_members` the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from sae_lab.metrics import active_per_token, firing_counts, firing_counts_sparse, reconstruction_metrics
from sae_lab.metrics.consistency import self_consistency
from sae_lab.metrics.ground_truth import (
    aligned_latents,
    dictionary_recovery,
    latent_recovery_error,
    match_to_truth,
    spearman,
)
from sae_lab.metrics.spectrum import rate_proxy_bits
from sae_lab.models.protocol import GroundTruth
from sae_lab.sae.base import MemberSAE


class EvalResult(NamedTuple):
    metrics: dict[str, torch.Tensor]  # one [E] tensor per metric name (metrics.csv columns)
    firing_counts: torch.Tensor       # tokens each feature fired on, [E, d_sae]


@dataclass
class KeptCodes:
    """The sparse codes `evaluate_members` found for the eval rows before `rows`, kept for patched CE:
    where its spliced activations are exactly such a chunk of rows, the reconstruction needs no second
    encode. `chunks` maps a chunk's first row to (its rows [B, d_model], values [E, B, k], indices [E, B, k])."""

    rows: int
    chunks: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=dict)


@torch.no_grad()
def evaluate_members(sae: MemberSAE, x: torch.Tensor, chunk_size: int = 4096,
                     keep: KeptCodes | None = None) -> EvalResult:
    """Metrics and firing counts of every member on the eval set `x` [N, d_model]; with `keep`, the
    fixed-k codes of its first `keep.rows` rows go into `keep.chunks`."""
    x_hats, actives, certs, counts = [], [], [], None
    chunk_size = max(256, chunk_size // sae.n_members)  # keep [E, chunk, d_sae] scratch near cache size
    for start in range(0, len(x), chunk_size):
        chunk = x[start:start + chunk_size]
        sparse = sae.sparse_forward(chunk)
        if sparse is not None:  # fixed-k codes: never build the dense [E, B, d_sae] tensor
            x_hat, cert = sparse.x_hat, sparse.certificate
            active = active_per_token(sparse.values)
            c = firing_counts_sparse(sparse.values, sparse.indices, sae.d_sae)
            if keep is not None and start < keep.rows:
                keep.chunks[start] = (chunk, sparse.values, sparse.indices)
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


@torch.no_grad()
def ground_truth_columns(sae: MemberSAE, x: torch.Tensor, truth: GroundTruth, chunk_size: int = 4096
                         ) -> dict[str, torch.Tensor]:
    """Recovery of the truth by every member on the eval set x [N, d_model] (rows aligned with
    truth.latents): dictionary recovery, the mean latent recovery error after matching, and the Spearman
    correlation of each sample's certificate with its latent error. One [E] tensor per column."""
    decoder = sae.decoder().cpu()
    matchings = [match_to_truth(decoder[e], truth.dictionary) for e in range(sae.n_members)]
    rows = [dictionary_recovery(decoder[e], truth.dictionary, matching=matchings[e]) for e in range(sae.n_members)]
    errors, certs = [[] for _ in matchings], []
    chunk_size = max(256, chunk_size // sae.n_members)
    for start in range(0, len(x), chunk_size):
        chunk, latents = x[start:start + chunk_size], truth.latents[start:start + chunk_size]
        z = sae.encode(chunk)
        x_t = sae.consistency_codes(z)
        # per-sample certificate: the mean over a one-sample axis is that sample's value
        certs.append(self_consistency(z[..., None, :], x_t[..., None, :], sae.support_certificate).cpu())
        for e, matching in enumerate(matchings):
            errors[e].append(latent_recovery_error(aligned_latents(z[e].cpu(), matching), latents))
    cert = torch.cat(certs, 1)
    for e, row in enumerate(rows):
        error = torch.cat(errors[e])
        row.update(gt_latent_error=float(error.mean()), gt_cert_spearman=spearman(cert[e], error))
    return {name: torch.tensor([row[name] for row in rows]) for name in rows[0]}
