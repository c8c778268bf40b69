"""Cross-seed agreement of dictionaries (docs/metrics.md, "Cross-seed agreement").

Dictionaries are [m, d] with atoms as rows; they are L2-normalised row-wise before comparison.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

STABILITY_THRESHOLDS = (0.5, 0.7, 0.9)


def normalize_rows(d: torch.Tensor) -> torch.Tensor:
    return d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def abs_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|cos(a_i, b_j)| as an [m_a, m_b] matrix (small dictionaries; MMCS never builds it whole)."""
    return (normalize_rows(a) @ normalize_rows(b).T).abs()


@torch.no_grad()
def max_abs_cosines(a: torch.Tensor, b: torch.Tensor, chunk_size: int = 2048
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """For every atom of `a` its max |cos| over `b`, and vice versa, in row chunks of `a`, so two
    16,384 × 2,304 dictionaries need only chunk_size × 16,384 floats of scratch."""
    a_n, b_n_t = normalize_rows(a.float()), normalize_rows(b.float()).T.contiguous()
    best_a = torch.empty(len(a_n), dtype=a_n.dtype, device=a_n.device)
    best_b = torch.zeros(b_n_t.shape[1], dtype=a_n.dtype, device=a_n.device)
    for start in range(0, len(a_n), chunk_size):
        sims = a_n[start:start + chunk_size] @ b_n_t
        sims.abs_()
        best_a[start:start + chunk_size] = sims.amax(dim=1)
        torch.maximum(best_b, sims.amax(dim=0), out=best_b)
    return best_a, best_b


def mmcs(a: torch.Tensor, b: torch.Tensor, chunk_size: int = 2048) -> float:
    """MMCS(A, B) = ½ [mean_i max_j |cos(a_i, b_j)| + mean_j max_i |cos(a_i, b_j)|]."""
    best_a, best_b = max_abs_cosines(a, b, chunk_size)
    return 0.5 * (best_a.mean().item() + best_b.mean().item())


def random_dictionaries(n: int, m: int, d: int, seed: int = 0) -> torch.Tensor:
    """n dictionaries of m i.i.d. Gaussian rows in R^d, normalised: [n, m, d]."""
    gen = torch.Generator().manual_seed(seed)
    return normalize_rows(torch.randn(n, m, d, generator=gen))


def random_baseline_mmcs(m: int, d: int, draws: int = 20, seed: int = 0) -> np.ndarray:
    """Empirical null: MMCS of `draws` independent pairs of random dictionaries of shape (m, d)."""
    out = []
    for i in range(draws):
        pair = random_dictionaries(2, m, d, seed=seed * 1_000_003 + i)
        out.append(mmcs(pair[0], pair[1]))
    return np.asarray(out)


def hungarian(sim: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum-weight one-to-one matching on a similarity matrix: (rows, cols, matched values)."""
    sim = sim.detach().cpu().numpy() if isinstance(sim, torch.Tensor) else np.asarray(sim)
    rows, cols = linear_sum_assignment(sim, maximize=True)
    return rows, cols, sim[rows, cols]


def matched_summary(values: np.ndarray, thresholds: Sequence[float] = STABILITY_THRESHOLDS) -> dict:
    """Mean and median matched similarity and the stability fraction at each threshold."""
    values = np.asarray(values, dtype=np.float64)
    out = {"mean": float(values.mean()) if values.size else float("nan"),
           "median": float(np.median(values)) if values.size else float("nan"), "n_matched": int(values.size)}
    for t in thresholds:
        out[f"stable_{t:g}"] = float((values >= t).mean()) if values.size else float("nan")
    return out


def decoder_hungarian(a: torch.Tensor, b: torch.Tensor,
                      thresholds: Sequence[float] = STABILITY_THRESHOLDS) -> dict:
    """One-to-one matching of decoder atoms on |cos|: mean, median, stability fractions."""
    _, _, values = hungarian(abs_cosine(a.float(), b.float()))
    return matched_summary(values, thresholds)


def live_only_hungarian(a: torch.Tensor, b: torch.Tensor, counts_a: torch.Tensor, counts_b: torch.Tensor,
                        thresholds: Sequence[float] = STABILITY_THRESHOLDS) -> dict:
    """Decoder Hungarian restricted to atoms that fire on the eval set; reports how many were kept."""
    live_a, live_b = counts_a > 0, counts_b > 0
    out = decoder_hungarian(a[live_a], b[live_b], thresholds) if live_a.any() and live_b.any() \
        else matched_summary(np.empty(0), thresholds)
    out.update(kept_a=int(live_a.sum()), kept_b=int(live_b.sum()))
    return out


def feature_correlations(z_s: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
    """Pearson correlation [m_s, m_t] between features across tokens; constant features give 0."""
    zs = z_s.double() - z_s.double().mean(0)
    zt = z_t.double() - z_t.double().mean(0)
    ns, nt = zs.norm(dim=0), zt.norm(dim=0)
    live = (ns[:, None] > 0) & (nt[None, :] > 0)
    corr = (zs.T @ zt) / (ns[:, None] * nt[None, :]).clamp_min(1e-300)
    return torch.where(live, corr, torch.zeros((), dtype=corr.dtype))


def firing_jaccard(z_s: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
    """Jaccard overlap [m_s, m_t] of the token sets on which each feature fires (0 if both empty)."""
    fs, ft = (z_s != 0).double(), (z_t != 0).double()
    inter = fs.T @ ft
    union = fs.sum(0)[:, None] + ft.sum(0)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp_min(1), torch.zeros((), dtype=inter.dtype))


def live_matched_mean(live_sim: torch.Tensor | np.ndarray, n_rows: int, n_cols: int) -> float:
    """The mean matched value of `hungarian` on an n_rows × n_cols similarity matrix whose rows and columns
    other than those of `live_sim` are all zero (dead features: every pairing with them is worth 0), from
    `live_sim` alone. Exact: with rows ≤ columns, every live row is matched either to a live column or to
    one of min(#zero columns, #live rows) zero columns (worth 0, better than a negative value), and the
    zero rows take what is left at 0; so a mostly dead dictionary costs a matching of its live part only."""
    live = live_sim.detach().cpu().numpy() if isinstance(live_sim, torch.Tensor) else np.asarray(live_sim)
    if n_rows > n_cols:
        live, n_rows, n_cols = live.T, n_cols, n_rows
    if n_rows == 0:
        return float("nan")
    if live.size == 0:
        return 0.0
    pad = min(n_cols - live.shape[1], live.shape[0])
    padded = np.zeros((live.shape[0], live.shape[1] + pad), dtype=live.dtype)
    padded[:, :live.shape[1]] = live
    return float(hungarian(padded)[2].sum() / n_rows)


def activation_hungarian(z_s: torch.Tensor, z_t: torch.Tensor) -> float:
    """Mean matched Pearson correlation of feature activations on held-out tokens. Features constant on
    those tokens correlate 0 with everything, so only the others are correlated and matched."""
    def live(z: torch.Tensor) -> torch.Tensor:
        z = z.double()
        return (z - z.mean(0)).norm(dim=0) > 0  # feature_correlations' own test

    ls, lt = live(z_s), live(z_t)
    return live_matched_mean(feature_correlations(z_s[:, ls], z_t[:, lt]), z_s.shape[1], z_t.shape[1])


def firing_overlap_hungarian(z_s: torch.Tensor, z_t: torch.Tensor) -> float:
    """Mean matched Jaccard overlap of firing sets on held-out tokens. Features that never fire overlap 0
    with everything, so only the others are compared and matched."""
    fs, ft = (z_s != 0).any(0), (z_t != 0).any(0)
    return live_matched_mean(firing_jaccard(z_s[:, fs], z_t[:, ft]), z_s.shape[1], z_t.shape[1])


def permute_features_per_block(z: torch.Tensor, block: int, seed: int = 0) -> torch.Tensor:
    """Null for activation/firing matching: feature indices shuffled independently in each block of
    `block` tokens, which keeps every token's sparsity but breaks feature identity."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty_like(z)
    for start in range(0, len(z), block):
        out[start:start + block] = z[start:start + block][:, torch.randperm(z.shape[1], generator=gen)]
    return out


def top_right_singular_vectors(d: torch.Tensor, rank: int) -> torch.Tensor:
    """[d_model, rank] orthonormal basis of the top-`rank` right singular subspace of D [m, d_model]."""
    _, _, vh = torch.linalg.svd(d.double(), full_matrices=False)
    return vh[:rank].T


def subspace_overlap(a: torch.Tensor, b: torch.Tensor, rank: int) -> float:
    """‖U_aᵀ U_b‖_F² / r for the top-r right singular subspaces; random baseline r / d."""
    ua, ub = top_right_singular_vectors(a, rank), top_right_singular_vectors(b, rank)
    return float((ua.T @ ub).pow(2).sum() / rank)


def subspace_baseline(rank: int, d: int) -> float:
    return rank / d


def live_only_mmcs(a: torch.Tensor, b: torch.Tensor, counts_a: torch.Tensor, counts_b: torch.Tensor,
                   chunk_size: int = 2048) -> float:
    """MMCS between the live atoms (firing count > 0) of each dictionary; NaN when a side has none.
    Dead atoms keep their random initial direction, so they drag all-atom MMCS toward the null."""
    live_a, live_b = counts_a > 0, counts_b > 0
    if not (live_a.any() and live_b.any()):
        return float("nan")
    return mmcs(a[live_a], b[live_b], chunk_size)


def signed_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """cos(a_i, b_j) with its sign, [m_a, m_b]."""
    return normalize_rows(a.float()) @ normalize_rows(b.float()).T


def signed_hungarian_mean(a: torch.Tensor, b: torch.Tensor) -> float:
    """Song et al.'s PW-MCC: one-to-one matching maximising the summed signed cosine, mean matched cosine.
    Unlike decoder_hungarian, an atom and its negation count as opposite, not equal."""
    return float(hungarian(signed_cosine(a, b))[2].mean())


def shared_latent_fraction(enc_a: torch.Tensor, dec_a: torch.Tensor, enc_b: torch.Tensor, dec_b: torch.Tensor,
                           threshold: float = 0.7) -> float:
    """Paulo & Belrose's shared latents: match latents one-to-one on the signed cosine of their encoder
    rows (their released script's default), then the fraction of matched pairs whose encoder cosine and
    decoder cosine both exceed `threshold`. Encoders and decoders are [m, d], one row per latent."""
    rows, cols, enc_cos = hungarian(signed_cosine(enc_a, enc_b))
    rows_t, cols_t = torch.as_tensor(rows), torch.as_tensor(cols)
    dec_cos = (normalize_rows(dec_a.float())[rows_t] * normalize_rows(dec_b.float())[cols_t]).sum(-1).numpy()
    return float(((enc_cos > threshold) & (dec_cos > threshold)).mean())


def basis_overlap(ua: torch.Tensor, ub: torch.Tensor) -> float:
    """‖U_aᵀ U_b‖_F² / r for orthonormal bases [d, r]: subspace_overlap from precomputed bases, so a report
    takes one SVD per dictionary instead of two per pair (top_right_singular_vectors(d, R)[:, :r] is the
    rank-r basis for every r ≤ R)."""
    return float((ua.T @ ub).pow(2).sum() / ua.shape[1])
