"""Recovery of a known dictionary and known latents (docs/metrics.md, "Ground truth").

Pure functions of tensors. The true dictionary and a learned one are [n, d] and [m, d] with atoms as
rows; true latents are [N, n] and learned codes [N, m].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from scipy.stats import spearmanr

from sae_lab.metrics.agreement import abs_cosine, hungarian, mmcs, normalize_rows

RECOVERY_THRESHOLDS = (0.9, 0.99)


class Matching(NamedTuple):
    """True atom i ↔ learned atom learned[i] (−1: unmatched, when m < n), with the sign of their cosine."""
    learned: torch.Tensor  # [n] long
    sign: torch.Tensor     # [n] ±1 (0 where unmatched)
    cosine: torch.Tensor   # [n] matched |cos| (0 where unmatched)


def match_to_truth(learned: torch.Tensor, truth: torch.Tensor) -> Matching:
    """One-to-one matching of true atoms to learned atoms maximising the summed |cos| (Hungarian)."""
    rows, cols, values = hungarian(abs_cosine(truth.float(), learned.float()))
    n = len(truth)
    matched = torch.full((n,), -1, dtype=torch.long)
    cosine, sign = torch.zeros(n), torch.zeros(n)
    rows_t, cols_t = torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)
    matched[rows_t] = cols_t
    cosine[rows_t] = torch.as_tensor(values, dtype=torch.float32)
    signed = (normalize_rows(truth.float())[rows_t] * normalize_rows(learned.float())[cols_t]).sum(-1)
    sign[rows_t] = torch.where(signed < 0, -1.0, 1.0)
    return Matching(matched, sign, cosine)


def dictionary_recovery(learned: torch.Tensor, truth: torch.Tensor,
                        thresholds: Sequence[float] = RECOVERY_THRESHOLDS,
                        matching: Matching | None = None) -> dict[str, float]:
    """MMCS against the truth, the mean matched |cos| over the n true atoms (0 for an unmatched one), and the
    fraction of true atoms whose match exceeds each threshold. Pass `matching` (match_to_truth's) when it is
    already computed: the Hungarian is the costly part."""
    cosine = (matching if matching is not None else match_to_truth(learned, truth)).cosine
    out = {"gt_mmcs": mmcs(learned, truth), "gt_hungarian_mean": float(cosine.mean())}
    for t in thresholds:
        out[f"gt_recovered_{t:g}"] = float((cosine > t).float().mean())
    return out


def aligned_latents(codes: torch.Tensor, matching: Matching) -> torch.Tensor:
    """The learned codes [N, m] re-indexed as the true latents [N, n]: column i is sign_i × the code of the
    atom matched to true atom i (0 where unmatched), so a recovered atom whose sign flipped still counts."""
    out = codes[:, matching.learned.clamp_min(0).to(codes.device)] * matching.sign.to(codes)
    return out * (matching.learned >= 0).to(codes)


def latent_recovery_error(aligned: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
    """‖x_m − x‖₂ per sample, [N], for aligned learned latents and the true latents, both [N, n]."""
    return (aligned - latents.to(aligned)).norm(dim=-1)


def spearman(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Spearman rank correlation of two samples (Pearson correlation of their average ranks); NaN when
    either is constant."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(spearmanr(a, b).statistic)
