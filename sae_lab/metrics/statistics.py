"""Statistics over many seeds (docs/metrics.md, "Training statistics for many seeds").

Pairwise values live in a symmetric [S, S] matrix (diagonal ignored), one entry per seed pair.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import numpy as np


def pair_matrix(n_seeds: int, values: dict[tuple[int, int], float]) -> np.ndarray:
    """Symmetric [S, S] matrix from {(i, j): value} over seed positions, NaN on the diagonal."""
    out = np.full((n_seeds, n_seeds), np.nan)
    for (i, j), v in values.items():
        out[i, j] = out[j, i] = v
    return out


def pair_values(matrix: np.ndarray) -> np.ndarray:
    """The S(S-1)/2 upper-triangle values."""
    i, j = np.triu_indices(len(matrix), k=1)
    return matrix[i, j]


def bootstrap_seed_ci(matrix: np.ndarray, n_resamples: int = 5000, alpha: float = 0.05, seed: int = 0,
                      offset: float = 0.0) -> tuple[float, float, float]:
    """Seed-resampled bootstrap of the mean pairwise value minus `offset`: resample seeds with
    replacement, average over the pairs among the distinct resampled seeds, take the percentile
    interval. Returns (estimate, low, high)."""
    s = len(matrix)
    m = np.nan_to_num(np.asarray(matrix, dtype=np.float64), nan=0.0)
    np.fill_diagonal(m, 0.0)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, s, size=(n_resamples, s))
    present = np.zeros((n_resamples, s))
    np.put_along_axis(present, draws, 1.0, axis=1)
    k = present.sum(1)
    ok = k >= 2
    sums = np.einsum("ri,ij,rj->r", present[ok], m, present[ok]) / 2
    means = sums / (k[ok] * (k[ok] - 1) / 2) - offset
    estimate = float(pair_values(matrix).mean() - offset)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return estimate, float(low), float(high)


def permutation_test(trained: np.ndarray, random: np.ndarray, n_permutations: int = 10000,
                     seed: int = 0) -> float:
    """Two-sided p-value for a difference in means between trained-pair and random-pair statistics,
    by relabelling the pooled values, with the add-one correction."""
    trained, random = np.asarray(trained, float), np.asarray(random, float)
    pooled = np.concatenate([trained, random])
    observed = abs(trained.mean() - random.mean())
    rng = np.random.default_rng(seed)
    n = len(trained)
    perms = np.argsort(rng.random((n_permutations, len(pooled))), axis=1)
    shuffled = pooled[perms]
    diffs = np.abs(shuffled[:, :n].mean(1) - shuffled[:, n:].mean(1))
    return float((1 + np.sum(diffs >= observed - 1e-15)) / (1 + n_permutations))


def equivalent_to_null(ci_low: float, ci_high: float, margin: float = 0.005) -> bool:
    """The gap's CI lies inside [-margin, margin]."""
    return -margin <= ci_low and ci_high <= margin


def all_pairs(n: int) -> list[tuple[int, int]]:
    return list(combinations(range(n), 2))


def bootstrap_means(values: np.ndarray, n_resamples: int = 5000, seed: int = 0) -> np.ndarray:
    """Means of `values` [Q, S] (Q quantities measured on the same S sequences) over `n_resamples`
    resamples of the sequences with replacement, the same resample for every quantity (paired):
    [n_resamples, Q]. A resample is a vector of multinomial counts, so its means are one matrix
    product; the counts depend only on (S, n_resamples, seed) and are reused across calls."""
    values = np.asarray(values, dtype=np.float64)
    counts = _resample_counts(values.shape[1], n_resamples, seed)
    out = np.empty((n_resamples, values.shape[0]))
    for start in range(0, n_resamples, _BLOCK):  # float64 a block at a time: the counts stay uint8
        out[start:start + _BLOCK] = counts[start:start + _BLOCK].astype(np.float64) @ values.T
    return out / values.shape[1]


# Resamples handled together: bounds the int64 draws and the float64 counts to ~13 MB at S = 12,769.
_BLOCK = 128


@lru_cache(maxsize=4)
def _resample_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """[n_resamples, n] counts as uint8, 8x less memory than float64 (a count is at most n, and above
    255 only with negligible probability; checked), drawn a block of rows at a time: the generator's stream,
    hence the draws, are those of one (n_resamples, n) call."""
    rng = np.random.default_rng(seed)
    counts = np.empty((n_resamples, n), dtype=np.uint8)
    for start in range(0, n_resamples, _BLOCK):
        rows = min(_BLOCK, n_resamples - start)
        # Draws with replacement, counted per resample (one bincount; numpy's multinomial is 10x slower).
        idx = rng.integers(0, n, size=(rows, n))
        idx += np.arange(rows)[:, None] * n
        block = np.bincount(idx.ravel(), minlength=rows * n)
        if block.max() > 255:
            raise ValueError(f"bootstrap over {n} sequences: a count exceeds 255; use more sequences.")
        counts[start:start + rows] = block.reshape(rows, n)
    return counts


def percentile_ci(samples: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """The (alpha/2, 1 - alpha/2) percentiles of bootstrap `samples`, NaNs ignored."""
    low, high = np.nanquantile(samples, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)
