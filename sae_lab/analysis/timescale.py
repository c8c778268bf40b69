"""The timescale ratio as a number: the epoch by which reconstruction (FVU, falling) and cross-seed MMCS
(rising) have each made 90% of their change between the first and last eval epoch, their ratio with a
seed-bootstrap CI, a saturating-curve fit where the data pin one down, and "still climbing" where MMCS
has not levelled off by the last epoch (then only a lower bound on the ratio)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeWarning, curve_fit

from sae_lab.analysis.conditions import Condition
from sae_lab.analysis.pairwise import MIN_SEEDS_FOR_VERDICT, mmcs_matrix, skipna_mean

LEVEL = 0.9  # the share of the total change that defines τ90
# Still changing at the end: the last eval interval carries more than this share of the total change per
# unit of ln(epoch). A saturating y = 1 − exp(−t/τ) falls below it once the last epoch passes about 3.6 τ.
CLIMBING_SLOPE = 0.1
MIN_FIT_EPOCHS = 4  # three parameters and at least one degree of freedom


def _fractions(y: np.ndarray) -> np.ndarray:
    """Share of the total change (last − first) made by each epoch; rows are curves [R, E]."""
    total = y[:, -1:] - y[:, :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total != 0, (y - y[:, :1]) / total, np.nan)


def crossing(epochs: np.ndarray, y: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """(epoch at which each curve of y [R, E] first reaches `level` of its change, index of the first eval
    epoch at or past it). Between eval epochs e0 < e1 the crossing is interpolated linearly in ln(epoch),
    t = e0 (e1/e0)^w, or linearly in epoch when e0 = 0 (ln 0 is not finite). NaN for a curve that does not
    change."""
    epochs, y = np.asarray(epochs, dtype=np.float64), np.atleast_2d(np.asarray(y, dtype=np.float64))
    frac = _fractions(y)
    reached = frac >= level
    j = np.maximum(np.where(reached.any(1), reached.argmax(1), len(epochs) - 1), 1)
    rows = np.arange(len(y))
    f0, f1 = frac[rows, j - 1], frac[rows, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.clip((level - f0) / (f1 - f0), 0.0, 1.0)
        e0, e1 = epochs[j - 1], epochs[j]
        e0_safe = np.where(e0 > 0, e0, 1.0)
        t = np.where(e0 > 0, e0_safe * (e1 / e0_safe) ** w, w * e1)
    return np.where(np.isfinite(frac[:, -1]), t, np.nan), j


def last_slope(epochs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Change over the last eval interval as a share of the total change, per unit of ln(epoch): [R].
    NaN when the last interval starts at epoch 0 (ln 0); still_changing then flags the curve anyway, as
    its 90% point is in that last interval."""
    epochs, y = np.asarray(epochs, dtype=np.float64), np.atleast_2d(np.asarray(y, dtype=np.float64))
    frac = _fractions(y)
    if epochs[-2] <= 0:
        return np.full(len(y), np.nan)
    return (frac[:, -1] - frac[:, -2]) / np.log(epochs[-1] / epochs[-2])


def still_changing(epochs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flag, last slope): the curve makes 90% of its change only in the last eval interval, or its last
    slope exceeds CLIMBING_SLOPE; either way its true 90% point may lie past the data. A curve that does
    not change is not flagged (its τ90 is NaN)."""
    t, j = crossing(epochs, y)
    slope = last_slope(epochs, y)
    return np.isfinite(t) & ((j == len(epochs) - 1) | (slope > CLIMBING_SLOPE)), slope


def _saturating(t: np.ndarray, a: float, b: float, tau: float) -> np.ndarray:
    return a - b * np.exp(-t / tau)


def fit_tau(epochs: np.ndarray, y: np.ndarray) -> float:
    """τ of y = a − b·exp(−t/τ) by least squares (scipy.optimize.curve_fit, 'trf' with τ > 0). NaN where
    the data do not pin it down: fewer than MIN_FIT_EPOCHS epochs, no convergence, or a fitted 90% point
    τ·ln 10 past the last epoch (the curve has not saturated inside the data)."""
    epochs, y = np.asarray(epochs, dtype=np.float64), np.asarray(y, dtype=np.float64)
    frac = _fractions(y[None])[0]  # τ is unchanged by rescaling y; the fit is better conditioned on 0 → 1
    if len(epochs) < MIN_FIT_EPOCHS or not np.isfinite(frac).all():
        return float("nan")
    guess = crossing(epochs, y)[0][0] / np.log(10)
    last = epochs[-1]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            (_, _, tau), _ = curve_fit(_saturating, epochs, frac, p0=(1.0, 1.0, np.clip(guess, 1e-6, last)),
                                       bounds=([-np.inf, -np.inf, 1e-9 * last], [np.inf, np.inf, 100 * last]),
                                       method="trf", maxfev=20000)
    except (RuntimeError, ValueError):
        return float("nan")
    return float(tau) if np.isfinite(tau) and tau * np.log(10) <= last else float("nan")


def curves(cond: Condition, rows: list[dict], pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eval epochs with seed pairs, per-seed FVU [S, E], pairwise MMCS [E, S, S]) of one condition."""
    seeds = sorted(cond.members)
    epochs = np.array([r["epoch"] for r in rows if "mmcs" in r])
    by_seed = cond.metrics.groupby(["seed", "epoch"])["fvu"].agg(skipna_mean).unstack("epoch") \
        if not cond.metrics.empty else pd.DataFrame()
    fvu = by_seed.reindex(index=seeds, columns=epochs).to_numpy(dtype=np.float64)
    matrices = np.stack([mmcs_matrix(seeds, pairs[pairs["epoch"] == e]) for e in epochs]) if len(epochs) \
        else np.empty((0, len(seeds), len(seeds)))
    return epochs, fvu, matrices


def resampled_curves(fvu: np.ndarray, matrices: np.ndarray, n_resamples: int, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Seed-bootstrap curves ([R', E] FVU, [R', E] MMCS): draw S seeds with replacement; FVU is the mean
    over the draws, MMCS the mean over pairs of the distinct seeds drawn (as bootstrap_seed_ci); draws
    with fewer than two distinct seeds are dropped."""
    n = fvu.shape[0]
    draws = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    counts = np.zeros((n_resamples, n))
    np.add.at(counts, (np.arange(n_resamples)[:, None], draws), 1.0)
    present = (counts > 0).astype(np.float64)
    k = present.sum(1)
    ok = k >= 2
    known = np.isfinite(fvu)
    with np.errstate(divide="ignore", invalid="ignore"):  # a draw of seeds without FVU at an epoch: NaN
        fvu_r = (counts @ np.where(known, fvu, 0.0)) / (counts @ known.astype(np.float64))
    m = np.nan_to_num(matrices, nan=0.0)
    m[:, np.arange(n), np.arange(n)] = 0.0
    mmcs_r = np.einsum("ri,eij,rj->re", present[ok], m, present[ok]) / (k[ok] * (k[ok] - 1))[:, None]
    return fvu_r[ok], mmcs_r


def _ratio(t_mmcs: np.ndarray, t_recon: np.ndarray, climbing: np.ndarray, falling: np.ndarray) -> np.ndarray:
    """τ_MMCS / τ_recon; +inf where MMCS is still climbing (its τ90 lies past the data, so the ratio has
    no upper bound), NaN where reconstruction is still falling (τ_recon itself unknown)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = t_mmcs / t_recon
    return np.where(falling, np.nan, np.where(climbing, np.inf, ratio))


def ratio_ci(fvu: np.ndarray, matrices: np.ndarray, epochs: np.ndarray, n_resamples: int,
             alpha: float = 0.05) -> tuple[float, float]:
    """Percentile CI of the ratio over seed-bootstrap resamples. Order statistics, not interpolation
    (inverted_cdf), so an end is +inf when that many resamples are still climbing."""
    fvu_r, mmcs_r = resampled_curves(fvu, matrices, n_resamples)
    climbing, _ = still_changing(epochs, mmcs_r)
    falling, _ = still_changing(epochs, fvu_r)
    ratio = _ratio(crossing(epochs, mmcs_r)[0], crossing(epochs, fvu_r)[0], climbing, falling)
    ratio = ratio[~np.isnan(ratio)]
    if not ratio.size:
        return float("nan"), float("nan")
    low, high = np.quantile(ratio, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
    return float(low), float(high)


def condition_timescale(cond: Condition, rows: list[dict], pairs: pd.DataFrame, n_resamples: int = 5000
                        ) -> dict | None:
    """τ90 of FVU and MMCS, their ratio (CI from 3 seeds on), the still-climbing verdict with its lower
    bound, and the fitted τ of each; None with fewer than two eval epochs that have seed pairs."""
    epochs, fvu, matrices = curves(cond, rows, pairs)
    if len(epochs) < 2:
        return None
    recon = np.array([skipna_mean(col) for col in fvu.T])[None]
    agree = np.array([float(np.nanmean(pairs.loc[pairs["epoch"] == e, "mmcs"].to_numpy())) for e in epochs])[None]
    t_recon, t_mmcs = crossing(epochs, recon)[0][0], crossing(epochs, agree)[0][0]
    climbing, mmcs_slope = (v[0] for v in still_changing(epochs, agree))
    falling, recon_slope = (v[0] for v in still_changing(epochs, recon))
    ratio = float(_ratio(np.array([t_mmcs]), np.array([t_recon]), np.array([climbing]), np.array([falling]))[0])
    low = high = float("nan")
    if np.isfinite(ratio) and len(cond.members) >= MIN_SEEDS_FOR_VERDICT:
        low, high = ratio_ci(fvu, matrices, epochs, n_resamples)
    fit_recon, fit_mmcs = fit_tau(epochs, recon[0]), fit_tau(epochs, agree[0])
    bound = float(epochs[-1] / t_recon) if climbing and not falling else float("nan")
    return {"tau90_first_epoch": int(epochs[0]), "tau90_recon": float(t_recon), "tau90_mmcs": float(t_mmcs),
            "tau90_ratio": ratio if np.isfinite(ratio) else float("nan"), "tau90_ratio_ci_low": low,
            "tau90_ratio_ci_high": high, "mmcs_still_climbing": bool(climbing),
            "recon_still_falling": bool(falling), "tau90_ratio_lower_bound": bound,
            "mmcs_last_slope": float(mmcs_slope), "recon_last_slope": float(recon_slope),
            "fit_tau_recon": fit_recon, "fit_tau_mmcs": fit_mmcs, "fit_tau_ratio": fit_mmcs / fit_recon}


def _num(value: float) -> str:
    if np.isnan(value):
        return "–"
    if np.isinf(value):
        return "∞"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _why(slope: float) -> str:
    if slope > CLIMBING_SLOPE:
        return (f"the last eval interval carries {slope:.3g} of the total change per unit ln epoch, more "
                f"than {CLIMBING_SLOPE}")
    return "90% of the change is made only in the last eval interval"


def timescale_line(ts: dict, last_epoch: int) -> str:
    """The summary.md sentence for one condition."""
    head = (f"**Timescales** (epoch by which 90% of the change from epoch {ts['tau90_first_epoch']} to "
            f"{last_epoch} is made, interpolated in ln epoch): τ_recon (FVU) {_num(ts['tau90_recon'])}, "
            f"τ_MMCS {_num(ts['tau90_mmcs'])}; ")
    if np.isnan(ts["tau90_recon"]) or np.isnan(ts["tau90_mmcs"]):
        body = "no ratio: FVU or MMCS shows no change (or no value) between the first and last eval epoch."
    elif ts["recon_still_falling"]:
        body = f"FVU still falling at the last epoch ({_why(ts['recon_last_slope'])}): no ratio."
    elif ts["mmcs_still_climbing"]:
        body = (f"MMCS still climbing at the last epoch ({_why(ts['mmcs_last_slope'])}): τ_MMCS/τ_recon > "
                f"{_num(ts['tau90_ratio_lower_bound'])} (last epoch / τ_recon).")
    else:
        ci = f" [{_num(ts['tau90_ratio_ci_low'])}, {_num(ts['tau90_ratio_ci_high'])}] (seed bootstrap, 95%)" \
            if np.isfinite(ts["tau90_ratio_ci_low"]) else " (no CI below 3 seeds)"
        body = f"τ_MMCS/τ_recon = {_num(ts['tau90_ratio'])}{ci}."
    fit = (f" Fitted y = a − b·exp(−t/τ) (scipy curve_fit): τ_recon {_num(ts['fit_tau_recon'])}, "
           f"τ_MMCS {_num(ts['fit_tau_mmcs'])}, ratio {_num(ts['fit_tau_ratio'])}"
           "; – where the fit's 90% point τ·ln 10 lies past the data or it did not converge.")
    return head + body + fit
