"""Timescales of reconstruction and agreement on hand-built curves whose 90% points are known analytically:
FVU = exp(−t/2), MMCS = 1 − exp(−t/100) (t90 = τ ln 10 up to the e^{−2000/τ} tail), and one still climbing."""

from __future__ import annotations

import csv
import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import torch

from sae_lab.analysis import build_report
from sae_lab.analysis.conditions import Condition
from sae_lab.analysis.timescale import (
    CLIMBING_SLOPE,
    condition_timescale,
    crossing,
    fit_tau,
    resampled_curves,
    still_changing,
    timescale_line,
)
from sae_lab.artifacts import RunDir
from sae_lab.metrics import bootstrap_seed_ci
from sae_lab.metrics.statistics import pair_matrix
from tests.helpers.hand_runs import make_run_snapshots, random_decoder

EPOCHS = np.concatenate([[0], np.unique(np.round(np.logspace(0, np.log10(2000), 40)))]).astype(int)
SEEDS = (1, 2, 3, 4)


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _t90(tau: float, last: float = 2000.0) -> float:
    """Exact 90% point of 1 − exp(−t/τ) between t = 0 and `last`."""
    return -tau * math.log(1 - 0.9 * (1 - math.exp(-last / tau)))


def _condition(fvu_tau: float, mmcs_tau: float) -> tuple[Condition, list[dict], pd.DataFrame]:
    """Seeds whose FVU and pairwise MMCS are affine images of one saturating curve each (seed- and
    pair-specific scale and offset), so every seed resample has the same 90% points."""
    metrics, pairs, rows = [], [], []
    for s in SEEDS:
        metrics += [{"epoch": int(e), "seed": s, "fvu": 0.1 * s + (0.5 + 0.1 * s) * math.exp(-e / fvu_tau)}
                    for e in EPOCHS]
    for e in EPOCHS:
        rise = 1 - math.exp(-e / mmcs_tau)
        pairs += [{"epoch": int(e), "seed_a": a, "seed_b": b, "mmcs": 0.2 + 0.01 * (a + b) + 0.1 * (a * b) * rise}
                  for a, b in combinations(SEEDS, 2)]
        rows.append({"epoch": int(e), "mmcs": 0.0})
    cond = Condition(name="c", config={}, members={s: RunDir(f"/nonexistent/{s}") for s in SEEDS},
                     metrics=pd.DataFrame(metrics))
    return cond, rows, pd.DataFrame(pairs)


def test_crossing_interpolates_in_log_epoch_and_linearly_from_epoch_zero():
    t, j = crossing(np.array([1, 10, 100]), np.array([[0.0, 0.8, 1.0]]))
    assert t[0] == pytest.approx(math.sqrt(10 * 100)) and j[0] == 2  # halfway between ln 10 and ln 100
    t, j = crossing(np.array([0, 10, 100]), np.array([[5.0, 0.25, 0.0]]))  # falling: 95% of it by epoch 10
    assert t[0] == pytest.approx(10 * 0.9 / 0.95) and j[0] == 1
    assert math.isnan(crossing(np.array([0, 1, 2]), np.array([[1.0, 2.0, 1.0]]))[0][0])  # no net change


def test_still_changing_by_slope_or_last_interval():
    epochs = np.array([1, 10, 100, 1000])
    flat = np.array([[0.0, 0.5, 0.97, 1.0]])  # last interval: 0.03 per ln 10 = 0.013 per unit ln epoch
    steep = np.array([[0.0, 0.5, 0.92, 1.0]])  # 0.08 / ln 10 = 0.035: under the threshold...
    late = np.array([[0.0, 0.1, 0.3, 1.0]])  # ...but here 90% comes only in the last interval
    assert not still_changing(epochs, flat)[0][0] and not still_changing(epochs, steep)[0][0]
    assert still_changing(epochs, late)[0][0]
    slope = still_changing(epochs, np.array([[0.0, 0.2, 0.9, 1.25]]))[1][0]
    assert slope == pytest.approx(0.35 / 1.25 / math.log(10)) and slope > CLIMBING_SLOPE


def test_known_timescales_and_their_ratio():
    ts = condition_timescale(*_condition(2.0, 100.0), n_resamples=400)
    assert ts["tau90_recon"] == pytest.approx(_t90(2.0), rel=0.02)  # 2 ln 10 = 4.61, log-spaced samples
    assert ts["tau90_mmcs"] == pytest.approx(_t90(100.0), rel=0.02)  # 100 ln 10 = 230
    assert ts["tau90_ratio"] == pytest.approx(_t90(100.0) / _t90(2.0), rel=0.03)
    assert not ts["mmcs_still_climbing"] and not ts["recon_still_falling"]
    assert math.isnan(ts["tau90_ratio_lower_bound"])
    # the fit recovers τ itself; every seed resample has the same curves up to scale, so the CI is the point
    assert ts["fit_tau_recon"] == pytest.approx(2.0, rel=1e-4)
    assert ts["fit_tau_mmcs"] == pytest.approx(100.0, rel=1e-4)
    assert ts["fit_tau_ratio"] == pytest.approx(50.0, rel=1e-4)
    assert ts["tau90_ratio_ci_low"] == pytest.approx(ts["tau90_ratio"], rel=1e-9)
    assert ts["tau90_ratio_ci_high"] == pytest.approx(ts["tau90_ratio"], rel=1e-9)
    line = timescale_line(ts, 2000)
    assert f"τ_MMCS/τ_recon = {ts['tau90_ratio']:.3g} [" in line and "(seed bootstrap, 95%)" in line


def test_still_climbing_gives_a_lower_bound_not_a_number():
    ts = condition_timescale(*_condition(2.0, 5000.0), n_resamples=200)
    assert ts["mmcs_still_climbing"] and not ts["recon_still_falling"]
    assert math.isnan(ts["tau90_ratio"]) and math.isnan(ts["tau90_ratio_ci_low"])
    assert ts["tau90_ratio_lower_bound"] == pytest.approx(2000 / ts["tau90_recon"])
    assert ts["mmcs_last_slope"] > CLIMBING_SLOPE
    assert math.isnan(ts["fit_tau_mmcs"])  # τ ln 10 = 11,513 lies past the last epoch
    line = timescale_line(ts, 2000)
    assert "MMCS still climbing" in line and f"> {ts['tau90_ratio_lower_bound']:.3g} (last epoch / τ_recon)" in line


def test_fit_needs_enough_epochs_and_a_saturation_inside_the_data():
    epochs = np.array([0, 10, 100, 1000])
    assert fit_tau(epochs, 1 - np.exp(-epochs / 30.0)) == pytest.approx(30.0, rel=1e-4)
    assert math.isnan(fit_tau(epochs[:3], 1 - np.exp(-epochs[:3] / 30.0)))
    assert math.isnan(fit_tau(epochs, 1 - np.exp(-epochs / 3000.0)))


def test_resampled_curves_agree_with_bootstrap_seed_ci_and_a_loop():
    rng = np.random.default_rng(5)
    n, n_epochs, n_resamples = 5, 3, 300
    fvu = rng.random((n, n_epochs))
    matrices = np.stack([pair_matrix(n, {(i, j): rng.random() for i, j in combinations(range(n), 2)})
                         for _ in range(n_epochs)])
    fvu_r, mmcs_r = resampled_curves(fvu, matrices, n_resamples, seed=0)
    for e in range(n_epochs):  # the same draws as bootstrap_seed_ci: its interval is these curves' quantiles
        _, low, high = bootstrap_seed_ci(matrices[e], n_resamples=n_resamples, seed=0)
        assert np.quantile(mmcs_r[:, e], [0.025, 0.975]) == pytest.approx([low, high], rel=1e-12)
    draws = np.random.default_rng(0).integers(0, n, size=(n_resamples, n))
    kept = [d for d in draws if len(set(d)) >= 2]
    assert len(kept) == len(fvu_r)
    for d, row in zip(kept, fvu_r, strict=True):
        assert row == pytest.approx(fvu[d].mean(0), rel=1e-12)


def test_report_writes_the_timescales_of_its_trajectory(tmp_path):
    epochs = (0, 1, 2, 5, 10, 20, 50)
    for seed in (1, 2, 3):
        cfg = {"sae": {"architecture": "topk"}, "d_sae": 8, "seed": seed}
        snapshots = {e: (random_decoder(100 * seed + e), torch.ones(8)) for e in epochs}
        make_run_snapshots(tmp_path, f"s{seed}", cfg, snapshots, fvu={e: 0.1 + math.exp(-e / 2) for e in epochs})
    summary = build_report(tmp_path, n_resamples=200, progress=False)
    traj = _read(summary.parent / "trajectory.csv")
    (final,) = _read(summary.parent / "final.csv")
    fvu = np.array([[float(r["fvu"]) for r in traj]])
    agree = np.array([[float(r["mmcs"]) for r in traj]])
    assert float(final["tau90_recon"]) == pytest.approx(crossing(np.array(epochs), fvu)[0][0], rel=1e-9)
    assert float(final["tau90_mmcs"]) == pytest.approx(crossing(np.array(epochs), agree)[0][0], rel=1e-9)
    assert float(final["fit_tau_recon"]) == pytest.approx(2.0, rel=1e-4)
    # The still-climbing flag worked out by hand from the trajectory: share of the epoch-0-to-last change
    # reached at each eval; flagged when 90% is reached only in the last interval or the last interval's
    # slope per unit of ln(epoch) exceeds CLIMBING_SLOPE.
    share = (agree[0] - agree[0][0]) / (agree[0][-1] - agree[0][0])
    first_90 = int(np.argmax(share >= 0.9))
    slope = (share[-1] - share[-2]) / math.log(epochs[-1] / epochs[-2])
    want = first_90 == len(epochs) - 1 or slope > CLIMBING_SLOPE
    assert final["mmcs_still_climbing"] == str(bool(want))
    assert float(final["mmcs_last_slope"]) == pytest.approx(slope, rel=1e-9)
    assert "**Timescales** (epoch by which 90% of the change from epoch 0 to 50" in summary.read_text()
