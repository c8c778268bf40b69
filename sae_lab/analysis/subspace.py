"""Subspace overlap (paper §4.5) in the report: top-r right singular subspaces of the decoders at ranks
8, 16, 32, 64, one SVD per seed per epoch, overlaps per pair, means against the r/d baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from sae_lab.metrics import basis_overlap, subspace_baseline
from sae_lab.metrics.agreement import top_right_singular_vectors

RANKS = (8, 16, 32, 64)


def subspace_ranks(d_sae: int, d_model: int) -> list[int]:
    """The ranks that fit: r ≤ d_model (else the baseline r/d exceeds 1) and r ≤ d_sae (the decoder has
    only d_sae singular vectors)."""
    return [r for r in RANKS if r <= min(d_sae, d_model)]


def seed_bases(decoders: dict[int, torch.Tensor], ranks: list[int]) -> dict[int, torch.Tensor]:
    """seed -> [d_model, max(ranks)] basis; its first r columns are the rank-r basis."""
    if not ranks:
        return {}
    return {seed: top_right_singular_vectors(d, max(ranks)) for seed, d in decoders.items()}


def pair_overlaps(ua: torch.Tensor, ub: torch.Tensor, ranks: list[int]) -> dict[str, float]:
    return {f"subspace_r{r}": basis_overlap(ua[:, :r], ub[:, :r]) for r in ranks}


def epoch_columns(pairs: pd.DataFrame, d_model: int) -> dict[str, float]:
    """Mean over pairs of each rank's overlap, its baseline r/d and their ratio (trajectory.csv)."""
    out = {}
    for r in RANKS:
        if f"subspace_r{r}" in pairs:
            mean, base = float(pairs[f"subspace_r{r}"].to_numpy().mean()), subspace_baseline(r, d_model)
            out.update({f"subspace_r{r}": mean, f"subspace_r{r}_baseline": base,
                        f"subspace_r{r}_x_baseline": mean / base})
    return out


def _ranks_in(rows: list[dict]) -> list[int]:
    return [r for r in RANKS if any(f"subspace_r{r}" in row for row in rows)]


def subspace_tables(rows: list[dict]) -> list[str]:
    """summary.md lines: the final epoch, rank by rank, then one compact row per epoch."""
    measured = [r for r in rows if any(k.startswith("subspace_r") for k in r)]
    ranks = _ranks_in(measured)
    if not ranks:
        return []
    final = measured[-1]
    lines = ["", f"Subspace overlap ‖U_aᵀU_b‖²_F / r of the top-r right singular subspaces of the decoders, mean "
             f"over seed pairs, against the random baseline r/d_model; final epoch {final['epoch']}:", "",
             "| rank r | overlap | baseline r/d | × baseline |", "| ---: | ---: | ---: | ---: |"]
    lines += [f"| {r} | {final[f'subspace_r{r}']:.3f} | {final[f'subspace_r{r}_baseline']:.3f} | "
              f"{final[f'subspace_r{r}_x_baseline']:.2f}× |" for r in ranks]
    lines += ["", "By epoch (overlap, × baseline):", "",
              "| epoch | " + " | ".join(f"r={r}" for r in ranks) + " |", "| ---: |" + " ---: |" * len(ranks)]
    lines += [f"| {row['epoch']} | " + " | ".join(_cell(row, r) for r in ranks) + " |" for row in measured]
    return lines


def _cell(row: dict, r: int) -> str:
    value = row.get(f"subspace_r{r}", np.nan)
    return "–" if np.isnan(value) else f"{value:.3f} ({row[f'subspace_r{r}_x_baseline']:.2f}×)"
