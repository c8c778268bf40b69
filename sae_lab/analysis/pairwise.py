"""Every pairwise cross-seed metric at every common eval epoch of a condition, plus statistics."""

from __future__ import annotations

from itertools import combinations

import numpy as np

from sae_lab.analysis.conditions import Condition
from sae_lab.metrics import (
    bootstrap_seed_ci,
    decoder_hungarian,
    equivalent_to_null,
    evt_null,
    live_only_hungarian,
    mmcs,
    pair_matrix,
    permutation_test,
    random_baseline_mmcs,
)
from sae_lab.metrics.agreement import abs_cosine, hungarian


def mmcs_matrix(seeds: list[int], pairs: list[dict]) -> np.ndarray:
    """[S, S] matrix of pairwise MMCS over `seeds` (positions in sorted order) from pair rows."""
    index = {s: i for i, s in enumerate(seeds)}
    return pair_matrix(len(seeds), {(index[p["seed_a"]], index[p["seed_b"]]): p["mmcs"] for p in pairs})


def common_epochs(cond: Condition) -> list[int]:
    sets = [set(run.snapshot_epochs(seed)) for seed, run in cond.members.items()]
    return sorted(set.intersection(*sets)) if sets else []


def pairwise_rows(cond: Condition, epoch: int) -> list[dict]:
    snaps = {s: run.read_snapshot(s, epoch) for s, run in sorted(cond.members.items())}
    rows = []
    for s, t in combinations(sorted(snaps), 2):
        a, b = snaps[s]["decoder"], snaps[t]["decoder"]
        hung = decoder_hungarian(a, b)
        live = live_only_hungarian(a, b, snaps[s]["firing_counts"], snaps[t]["firing_counts"])
        rows.append({"condition": cond.name, "epoch": epoch, "seed_a": s, "seed_b": t, "mmcs": mmcs(a, b),
                     **{f"hungarian_{k}": v for k, v in hung.items() if k != "n_matched"},
                     "live_hungarian_mean": live["mean"], "live_kept_a": live["kept_a"],
                     "live_kept_b": live["kept_b"]})
    return rows


def _mean_metric(cond: Condition, epoch: int, name: str) -> float:
    vals = [float(r[name]) for rows in cond.rows.values() for r in rows
            if int(r["epoch"]) == epoch and r.get(name) not in (None, "")]
    return float(np.mean(vals)) if vals else float("nan")


def trajectory(cond: Condition, n_resamples: int = 5000) -> tuple[list[dict], list[dict]]:
    """(per-epoch summary rows, every pairwise row) for one condition."""
    seeds = sorted(cond.members)
    epoch_rows, all_pairs = [], []
    for epoch in common_epochs(cond):
        pairs = pairwise_rows(cond, epoch)
        all_pairs += pairs
        d_sae, d_model = cond.members[seeds[0]].read_snapshot(seeds[0], epoch)["decoder"].shape
        null = evt_null(d_model, d_sae)
        row = {"condition": cond.name, "epoch": epoch, "n_seeds": len(seeds),
               "mse_mean": _mean_metric(cond, epoch, "mse_mean"), "fvu": _mean_metric(cond, epoch, "fvu"),
               "l0": _mean_metric(cond, epoch, "l0"), "alive_frac": _mean_metric(cond, epoch, "alive_frac"),
               "mmcs_null": null}
        if pairs:
            est, low, high = bootstrap_seed_ci(mmcs_matrix(seeds, pairs), n_resamples=n_resamples)
            row.update(mmcs=est, mmcs_ci_low=low, mmcs_ci_high=high, mmcs_x_random=est / null,
                       hungarian_mean=float(np.mean([p["hungarian_mean"] for p in pairs])),
                       stable_0_5=float(np.mean([p["hungarian_stable_0.5"] for p in pairs])))
        epoch_rows.append(row)
    return epoch_rows, all_pairs


def final_statistics(cond: Condition, pairs: list[dict], epoch: int, margin: float = 0.005,
                     n_resamples: int = 5000, seed: int = 0) -> dict:
    """Trained-minus-null gap with its seed-bootstrap CI, a permutation test against random-pair
    MMCS of the same shape, and the equivalence verdict, at `epoch`."""
    seeds = sorted(cond.members)
    at = [p for p in pairs if p["epoch"] == epoch]
    d_sae, d_model = cond.members[seeds[0]].read_snapshot(seeds[0], epoch)["decoder"].shape
    null = evt_null(d_model, d_sae)
    gap, low, high = bootstrap_seed_ci(mmcs_matrix(seeds, at), n_resamples=n_resamples, offset=null, seed=seed)
    random_pairs = random_baseline_mmcs(d_sae, d_model, draws=max(len(at), 10), seed=seed)
    p_value = permutation_test(np.array([p["mmcs"] for p in at]), random_pairs, seed=seed)
    return {"epoch": epoch, "n_pairs": len(at), "mmcs": gap + null, "null": null, "gap": gap,
            "gap_ci_low": low, "gap_ci_high": high, "random_mean": float(random_pairs.mean()),
            "random_sd": float(random_pairs.std(ddof=1)), "permutation_p": p_value,
            "equivalent_to_null": equivalent_to_null(low, high, margin), "margin": margin}


def matched_cosines(cond: Condition, epoch: int) -> np.ndarray:
    """All matched |cos| values of the decoder Hungarian over seed pairs at `epoch` (for the histogram)."""
    snaps = {s: run.read_snapshot(s, epoch)["decoder"] for s, run in cond.members.items()}
    values = [hungarian(abs_cosine(snaps[s], snaps[t]))[2] for s, t in combinations(sorted(snaps), 2)]
    return np.concatenate(values) if values else np.empty(0)
