"""Every pairwise cross-seed metric at every common eval epoch of a condition, plus statistics."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from sae_lab.analysis import subspace
from sae_lab.analysis.conditions import Condition
from sae_lab.analysis.exports import shared_latent_column
from sae_lab.metrics import (
    bootstrap_seed_ci,
    decoder_hungarian,
    equivalent_to_null,
    evt_null,
    live_only_hungarian,
    live_only_mmcs,
    mmcs,
    pair_matrix,
    permutation_test,
    random_baseline_mmcs,
    signed_hungarian_mean,
)
from sae_lab.metrics.agreement import abs_cosine, hungarian, random_dictionaries

# Seeds needed before the report gives a CI or a verdict. With 2 seeds there is one pair, so every
# seed-bootstrap resample that has a pair holds that same pair: the CI has zero width and the
# equivalence test (CI inside ±margin) would pass on one number. A permutation test of 1 trained pair
# against 10 random pairs cannot go below p = 1/11 either. 3 seeds (3 pairs) is the least for both.
MIN_SEEDS_FOR_VERDICT = 3
# One-to-one matchings cost O(d_sae³) each (three per pair: decoder, live-only, signed): at epochs before the
# final one they are computed for the pairs among the first HUNGARIAN_SEEDS seeds only (NaN for the rest),
# so a 20-seed report needs 15 instead of 190 matchings per epoch. MMCS and subspace use every pair.
HUNGARIAN_SEEDS = 6


def no_verdict_reason(n_seeds: int) -> str | None:
    """Why no CI and no verdict is given for `n_seeds` seeds, or None when there are enough."""
    if n_seeds >= MIN_SEEDS_FOR_VERDICT:
        return None
    return (f"no verdict: {n_seeds} seed{'s' if n_seeds != 1 else ''}, at least {MIN_SEEDS_FOR_VERDICT} needed "
            "for a seed-bootstrap CI and a permutation test")


def mmcs_matrix(seeds: list[int], pairs: pd.DataFrame) -> np.ndarray:
    """[S, S] matrix of pairwise MMCS over `seeds` (positions in sorted order) from pair rows."""
    index = {s: i for i, s in enumerate(seeds)}
    return pair_matrix(len(seeds), {(index[a], index[b]): m for a, b, m
                                    in pairs[["seed_a", "seed_b", "mmcs"]].itertuples(index=False)})


def skipna_mean(values: pd.Series | np.ndarray) -> float:
    """np.mean of the non-missing values (NaN when none). Not pandas' mean: its Kahan summation can move
    the last bit, and the report's numbers should not depend on which library averaged them."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


# Behaviour columns (patched CE) exist where the runs computed them; NaN elsewhere.
_EPOCH_METRICS = ["mse_mean", "fvu", "l0", "alive_frac", "ce_loss_score", "ce_rec", "kl"]
# Recovery of a known dictionary and latents (model=synthetic): in trajectory.csv only where runs wrote them.
GROUND_TRUTH_METRICS = ["gt_mmcs", "gt_hungarian_mean", "gt_recovered_0.9", "gt_recovered_0.99", "gt_latent_error",
                        "gt_cert_spearman"]
# Where the runs recorded it: the mean relative error ‖x − x̂‖/‖x‖ (DB-KSVD's Figure 3 plots it by iteration).
_OPTIONAL_METRICS = ["rel_error_norm"]


def epoch_means(cond: Condition) -> pd.DataFrame:
    """Mean over members of each eval metric, by epoch (NaN where a metric was never recorded)."""
    if cond.metrics.empty:
        return pd.DataFrame(columns=_EPOCH_METRICS, dtype=float)
    columns = _EPOCH_METRICS + [c for c in _OPTIONAL_METRICS + GROUND_TRUTH_METRICS if c in cond.metrics]
    present = [c for c in columns if c in cond.metrics]
    return cond.metrics.groupby("epoch")[present].agg(skipna_mean).reindex(columns=columns)


def common_epochs(cond: Condition) -> list[int]:
    """Epochs every member has a readable snapshot of (damaged snapshots were left out when loading)."""
    sets = [set(cond.epochs[seed] if seed in cond.epochs else run.snapshot_epochs(seed))
            for seed, run in cond.members.items()]
    return sorted(set.intersection(*sets)) if sets else []


def pairwise_rows(cond: Condition, epoch: int, final: bool = False) -> list[dict]:
    """One row per seed pair at `epoch`. At the `final` epoch the rows also carry the shared-latent
    fraction from the exported encoders (a NaN cell, left empty in pairs.csv, where the export does not
    hold that epoch's state)."""
    snaps = {s: run.read_snapshot(s, epoch) for s, run in sorted(cond.members.items())}
    if len(snaps) < 2:
        return []
    decoders = {s: snap["decoder"] for s, snap in snaps.items()}
    d_sae, d_model = next(iter(decoders.values())).shape
    ranks = subspace.subspace_ranks(d_sae, d_model)
    bases = subspace.seed_bases(decoders, ranks)  # one SVD per seed, not two per pair
    shared = shared_latent_column(cond.members, decoders) if final else {}
    matched = set(sorted(snaps)[:HUNGARIAN_SEEDS]) if not final else set(snaps)
    rows = []
    for s, t in combinations(sorted(snaps), 2):
        a, b, counts_a, counts_b = decoders[s], decoders[t], snaps[s]["firing_counts"], snaps[t]["firing_counts"]
        rows.append({"condition": cond.name, "epoch": epoch, "seed_a": s, "seed_b": t, "mmcs": mmcs(a, b),
                     **(_matchings(a, b, counts_a, counts_b) if {s, t} <= matched else {}),
                     "live_mmcs": live_only_mmcs(a, b, counts_a, counts_b),
                     **(subspace.pair_overlaps(bases[s], bases[t], ranks) if ranks else {}),
                     **({"shared_latent_frac": shared.get((s, t), float("nan"))} if final else {})})
    return rows


def _matchings(a, b, counts_a, counts_b) -> dict:
    """The one-to-one matchings of a pair: decoder Hungarian, live-only Hungarian, signed (PW-MCC)."""
    hung = decoder_hungarian(a, b)
    live = live_only_hungarian(a, b, counts_a, counts_b)
    return {**{f"hungarian_{k}": v for k, v in hung.items() if k != "n_matched"},
            "live_hungarian_mean": live["mean"], "live_kept_a": live["kept_a"], "live_kept_b": live["kept_b"],
            "signed_hungarian_mean": signed_hungarian_mean(a, b)}


def _agreement_columns(pairs: pd.DataFrame, d_model: int) -> dict:
    """Means over pairs of the columns beside MMCS: Hungarian, live-only (NaN pairs skipped: no live atom
    on a side), subspace overlap."""
    return {"hungarian_mean": skipna_mean(pairs["hungarian_mean"]),
            "stable_0_5": skipna_mean(pairs["hungarian_stable_0.5"]),
            "live_mmcs": skipna_mean(pairs["live_mmcs"]),
            "live_hungarian_mean": skipna_mean(pairs["live_hungarian_mean"]),
            **subspace.epoch_columns(pairs, d_model)}


def trajectory(cond: Condition, n_resamples: int = 5000) -> tuple[list[dict], pd.DataFrame]:
    """(per-epoch summary rows, every pairwise row) for one condition. Summary rows stay dicts: an epoch
    without pairs has no MMCS keys at all, which trajectory.csv writes as empty cells."""
    seeds = sorted(cond.members)
    epochs = common_epochs(cond)
    means = epoch_means(cond).reindex(epochs)  # NaN rows for epochs without metrics
    epoch_rows, all_pairs = [], []
    for epoch in epochs:
        pairs = pd.DataFrame(pairwise_rows(cond, epoch, final=epoch == epochs[-1]))
        if not pairs.empty:
            all_pairs.append(pairs)
        d_sae, d_model = cond.members[seeds[0]].read_snapshot(seeds[0], epoch)["decoder"].shape
        null = evt_null(d_model, d_sae)
        row = {"condition": cond.name, "epoch": epoch, "n_seeds": len(seeds),
               **{name: float(means.at[epoch, name]) for name in means.columns}, "mmcs_null": null}
        if not pairs.empty:
            est, low, high = bootstrap_seed_ci(mmcs_matrix(seeds, pairs), n_resamples=n_resamples)
            if no_verdict_reason(len(seeds)):  # a zero-width interval would claim a certainty it lacks
                low = high = float("nan")
            row.update(mmcs=est, mmcs_ci_low=low, mmcs_ci_high=high, mmcs_x_random=est / null,
                       **_agreement_columns(pairs, d_model))
        epoch_rows.append(row)
    return epoch_rows, pd.concat(all_pairs, ignore_index=True) if all_pairs else pd.DataFrame()


def final_statistics(cond: Condition, pairs: pd.DataFrame, epoch: int, margin: float = 0.005,
                     n_resamples: int = 5000, seed: int = 0) -> dict:
    """Trained-minus-null gap with its seed-bootstrap CI, a permutation test against random-pair
    MMCS of the same shape, and the equivalence verdict, at `epoch`. Below MIN_SEEDS_FOR_VERDICT seeds
    the CI, p-value and verdict are NaN / None and `no_verdict` says why."""
    seeds = sorted(cond.members)
    at = pairs[pairs["epoch"] == epoch]
    d_sae, d_model = cond.members[seeds[0]].read_snapshot(seeds[0], epoch)["decoder"].shape
    null = evt_null(d_model, d_sae)
    gap, low, high = bootstrap_seed_ci(mmcs_matrix(seeds, at), n_resamples=n_resamples, offset=null, seed=seed)
    random_pairs = random_baseline_mmcs(d_sae, d_model, draws=max(len(at), 10), seed=seed)
    p_value = permutation_test(at["mmcs"].to_numpy(), random_pairs, seed=seed)
    reason = no_verdict_reason(len(seeds))
    if reason:
        low = high = p_value = float("nan")
    return {"epoch": epoch, "n_pairs": len(at), "mmcs": gap + null, "null": null, "gap": gap,
            "gap_ci_low": low, "gap_ci_high": high, "random_mean": float(random_pairs.mean()),
            "random_sd": float(random_pairs.std(ddof=1)), "permutation_p": p_value,
            "equivalent_to_null": None if reason else equivalent_to_null(low, high, margin), "margin": margin,
            "no_verdict": reason, "d_sae": d_sae, "d_model": d_model}


def matched_cosines(cond: Condition, epoch: int) -> np.ndarray:
    """All matched |cos| values of the decoder Hungarian over seed pairs at `epoch` (for the histogram)."""
    snaps = {s: run.read_snapshot(s, epoch)["decoder"] for s, run in cond.members.items()}
    values = [hungarian(abs_cosine(snaps[s], snaps[t]))[2] for s, t in combinations(sorted(snaps), 2)]
    return np.concatenate(values) if values else np.empty(0)


def random_matched_cosines(d_sae: int, d_model: int, seed: int = 0) -> np.ndarray:
    """The null of the matched-cosine histogram: matched |cos| of the decoder Hungarian between two random
    dictionaries of the trained shape."""
    a, b = random_dictionaries(2, d_sae, d_model, seed=seed)
    return hungarian(abs_cosine(a, b))[2]
