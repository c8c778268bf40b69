"""Behaviour metrics: how much splicing an SAE into the subject changes its next-token predictions.

Pure functions of tensors (no I/O, no model). Inputs are what `subject.scored_logprobs` returns:
`logprobs` [S, P', V] (log-softmax over the vocabulary at the P' scored positions of each of the S
sequences) and `targets` [S, P'] (the token each position predicts). For mod113 P' = 1.

- ce_per_sequence(logprobs, targets)      = mean_p  -logprobs[s, p, targets[s, p]]             -> [S]
- kl_per_sequence(logprobs_ref, logprobs) = mean_p  sum_v p_ref(v) (log p_ref(v) - log p(v))   -> [S]
- ce_loss_score(l_orig, l_recon, l_zero)  = (L_zero - L_recon) / (L_zero - L_orig)
  (1 when the reconstruction loses nothing, 0 when it is as bad as zero-ablation)
- ce_rec(l_orig, l_recon)                 = 2 - L_recon / L_orig
  (1 when behaviour is preserved, 0 when the loss doubles; can be negative)
- delta_ce(l_orig, l_recon)               = L_recon - L_orig   (nats the reconstruction costs)
"""

from __future__ import annotations

import numpy as np
import torch


def _check_logprobs(logprobs: torch.Tensor) -> None:
    if logprobs.dim() != 3:
        raise ValueError(f"logprobs must be [S, P', V]; got shape {tuple(logprobs.shape)}.")


def ce_per_sequence(logprobs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sequence mean next-token cross-entropy [S] of `targets` [S, P'] under `logprobs` [S, P', V]."""
    _check_logprobs(logprobs)
    if targets.shape != logprobs.shape[:2]:
        raise ValueError(f"targets must be [S, P'] = {tuple(logprobs.shape[:2])}; got {tuple(targets.shape)}.")
    nll = -logprobs.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)
    return nll.mean(-1)


def kl_per_sequence(logprobs_ref: torch.Tensor, logprobs: torch.Tensor) -> torch.Tensor:
    """Per-sequence mean over scored positions of KL(ref || patched) [S], both inputs log-probabilities.

    Terms where p_ref = 0 contribute 0 (the 0 log 0 = 0 convention).
    """
    _check_logprobs(logprobs_ref)
    if logprobs.shape != logprobs_ref.shape:
        raise ValueError(f"logprobs shapes differ: {tuple(logprobs_ref.shape)} vs {tuple(logprobs.shape)}.")
    p_ref = logprobs_ref.exp()
    terms = torch.where(p_ref > 0, p_ref * (logprobs_ref - logprobs), torch.zeros_like(p_ref))
    return terms.sum(-1).mean(-1)


def ce_loss_score(l_orig, l_recon, l_zero):
    """Fraction of the loss gap to zero-ablation that the reconstruction recovers.

    (L_zero - L_recon) / (L_zero - L_orig): 1 when recon == orig, 0 when recon == zero. Works on
    floats, numpy arrays or tensors (elementwise); NaN when L_zero == L_orig (the hook does not matter).
    """
    if any(isinstance(v, torch.Tensor) for v in (l_orig, l_recon, l_zero)):
        l_orig, l_recon, l_zero = (torch.as_tensor(v, dtype=torch.float64) for v in (l_orig, l_recon, l_zero))
        return (l_zero - l_recon) / (l_zero - l_orig)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.asarray(l_zero, dtype=np.float64) - np.asarray(l_orig, dtype=np.float64)
        score = np.where(gap == 0, np.nan, (np.asarray(l_zero, dtype=np.float64) - l_recon) / gap)
    return float(score) if score.ndim == 0 else score


def ce_rec(l_orig, l_recon):
    """CE_rec = 2 - L_recon / L_orig: 1 = behaviour preserved, 0 = loss doubled (can be negative)."""
    return 2 - l_recon / l_orig


def delta_ce(l_orig, l_recon):
    """L_recon - L_orig: nats the spliced-in reconstruction costs."""
    return l_recon - l_orig




def k_star(ks, ce_recs, target: float) -> float | None:
    """k*(t): the smallest k with CE_rec >= `target`, by linear interpolation between neighbouring
    points of a k grid (sorted by k). None when no k on the grid reaches the target; the first k when
    it already does."""
    points = sorted(zip((float(k) for k in ks), (float(c) for c in ce_recs), strict=True))
    for i, (k, c) in enumerate(points):
        if c >= target:
            if i == 0:
                return k
            k0, c0 = points[i - 1]
            return k0 + (target - c0) * (k - k0) / (c - c0)
    return None
__all__ = ["ce_loss_score", "ce_per_sequence", "ce_rec", "delta_ce", "k_star", "kl_per_sequence"]
