"""One-to-one decoder matching of dictionaries too large for a dense similarity matrix (docs/metrics.md,
"Sparse Hungarian").

Two 131,072-atom dictionaries would need a 131k × 131k |cos| matrix (64 GiB in float32) for the exact
Hungarian. Almost every atom's optimal partner is among its few most similar atoms, so the matching is
solved on the sparse graph that keeps, for every atom of either dictionary, its n most similar atoms of
the other (scipy's `min_weight_full_bipartite_matching`). Its mean can only be below the exact one, and
the exact one is at most the smaller of the two halves of MMCS (every atom's best partner), so each
result carries that upper bound and the largest possible shortfall. When the kept graph has no full
matching, n is doubled until it has one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from sae_lab.metrics.agreement import STABILITY_THRESHOLDS, matched_summary, normalize_rows


@torch.no_grad()
def neighbour_graph(a: torch.Tensor, b: torch.Tensor, n_neighbours: int, chunk_size: int = 4096
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges (rows into a, cols into b, |cos|) joining every atom of `a` to its n most similar atoms of
    `b` and every atom of `b` to its n most similar of `a`, each edge once. Computed in row chunks of `a`
    on the tensors' device, so the scratch is chunk_size × len(b) floats."""
    a_n, b_n_t = normalize_rows(a.float()), normalize_rows(b.float()).T.contiguous()
    n_a, n_b = min(n_neighbours, len(b)), min(n_neighbours, len(a))
    rows, cols = [], []
    best_b_val = torch.full((n_b, len(b)), -1.0, device=a_n.device)  # running top-n of each column
    best_b_idx = torch.zeros((n_b, len(b)), dtype=torch.long, device=a_n.device)
    for start in range(0, len(a_n), chunk_size):
        sims = (a_n[start:start + chunk_size] @ b_n_t).abs_()
        top = sims.topk(n_a, dim=1).indices
        rows.append(torch.arange(start, start + len(sims), device=sims.device).repeat_interleave(n_a))
        cols.append(top.reshape(-1))
        col_top = sims.topk(min(n_b, len(sims)), dim=0)
        merged_val = torch.cat([best_b_val, col_top.values])
        merged_idx = torch.cat([best_b_idx, col_top.indices + start])
        keep = merged_val.topk(n_b, dim=0).indices
        best_b_val, best_b_idx = merged_val.gather(0, keep), merged_idx.gather(0, keep)
    rows.append(best_b_idx.reshape(-1))
    cols.append(torch.arange(len(b), device=a_n.device).repeat(n_b))
    edge = np.unique(torch.cat(rows).cpu().numpy() * len(b) + torch.cat(cols).cpu().numpy())
    r, c = np.divmod(edge, len(b))
    # |cos| of the kept edges, recomputed exactly (one dot product per edge, in chunks)
    vals = np.empty(len(edge), dtype=np.float64)
    for start in range(0, len(edge), 1 << 20):
        ri = torch.as_tensor(r[start:start + (1 << 20)], device=a_n.device)
        ci = torch.as_tensor(c[start:start + (1 << 20)], device=a_n.device)
        vals[start:start + len(ri)] = (a_n[ri] * b_n_t.T[ci]).sum(-1).abs().double().cpu().numpy()
    return r, c, vals


def sparse_hungarian(a: torch.Tensor, b: torch.Tensor, n_neighbours: int = 8, chunk_size: int = 4096,
                     max_neighbours: int = 512, thresholds: Sequence[float] = STABILITY_THRESHOLDS) -> dict:
    """Maximum-weight one-to-one matching of decoder atoms on |cos|, restricted to each atom's
    n_neighbours most similar atoms on either side: decoder_hungarian's summary (mean, median, stability
    fractions) plus `upper_bound` (the exact matching's mean is at most this), `max_shortfall`
    (upper_bound − mean) and `n_neighbours` (the n that gave a full matching)."""
    a_n, b_n = normalize_rows(a.float()), normalize_rows(b.float())
    n = n_neighbours
    while True:
        r, c, vals = neighbour_graph(a_n, b_n, n, chunk_size)
        # +1: every edge positive (no weight is mistaken for a missing edge); the same shift for
        # every full matching, so the optimum is unchanged
        graph = csr_matrix((vals + 1.0, (r, c)), shape=(len(a_n), len(b_n)))
        try:
            rows, cols = min_weight_full_bipartite_matching(graph, maximize=True)
            break
        except ValueError:  # no full matching in the kept graph
            if n >= min(max_neighbours, max(len(a_n), len(b_n))):
                raise ValueError(f"no full matching among each atom's {n} nearest atoms; raise max_neighbours "
                                 f"(now {max_neighbours}) or use decoder_hungarian") from None
            n *= 2
    matched = np.asarray(graph[rows, cols]).ravel() - 1.0
    out = matched_summary(matched, thresholds)
    # A matching pairs m = min(len(a), len(b)) atoms of each side, each with at most its best |cos|, so
    # its sum is at most the m largest row bests (and the m largest column bests). Every atom's best
    # partner is among its kept edges.
    m = min(len(a_n), len(b_n))
    best_a, best_b = np.zeros(len(a_n)), np.zeros(len(b_n))
    np.maximum.at(best_a, r, vals)
    np.maximum.at(best_b, c, vals)
    bound = min(np.sort(best_a)[-m:].sum(), np.sort(best_b)[-m:].sum()) / m
    out.update(upper_bound=float(bound), max_shortfall=float(bound - out["mean"]), n_neighbours=n)
    return out

