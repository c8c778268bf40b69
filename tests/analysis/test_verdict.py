"""No verdict from too little data: below MIN_SEEDS_FOR_VERDICT seeds the report gives the numbers, no
CI (not a zero-width one) and says why there is no verdict."""

from __future__ import annotations

import csv
import math

from sae_lab.analysis import build_report
from sae_lab.analysis.pairwise import MIN_SEEDS_FOR_VERDICT
from tests.helpers.hand_runs import make_run, random_decoder


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _two_and_three_seeds(root):
    for lr, seeds in ((0.001, (1, 2)), (0.002, (1, 2, 3))):
        for seed in seeds:
            cfg = {"sae": {"architecture": "topk"}, "d_sae": 8, "lr": lr, "seed": seed}
            make_run(root, f"lr{lr}_s{seed}", cfg, {e: random_decoder(100 * seed + e) for e in (0, 1)})


def test_two_seeds_get_numbers_but_no_ci_and_no_verdict(tmp_path):
    assert MIN_SEEDS_FOR_VERDICT == 3
    _two_and_three_seeds(tmp_path)
    summary = build_report(tmp_path, n_resamples=300, progress=False)
    traj = {(r["condition"], int(r["epoch"])): r for r in _read(summary.parent / "trajectory.csv")}
    two = traj[("lr=0.001", 1)]
    assert 0 < float(two["mmcs"]) < 1  # the number is still reported
    assert math.isnan(float(two["mmcs_ci_low"])) and math.isnan(float(two["mmcs_ci_high"]))
    three = traj[("lr=0.002", 1)]
    assert float(three["mmcs_ci_low"]) < float(three["mmcs"]) < float(three["mmcs_ci_high"])
    final = {r["condition"]: r for r in _read(summary.parent / "final.csv")}
    reason = "no verdict: 2 seeds, at least 3 needed for a seed-bootstrap CI and a permutation test"
    assert final["lr=0.001"]["verdict"] == reason
    assert math.isnan(float(final["lr=0.001"]["mmcs_sd"]))  # one pair has no spread
    assert final["lr=0.002"]["verdict"] in ("equivalent to the null", "not shown equivalent to the null")
    two_section, three_section = summary.read_text().split("### lr=0.001")[1].split("### lr=0.002")
    assert f"{reason}." in two_section and "equivalent" not in two_section and "permutation p" not in two_section
    assert "[–, –]" in two_section  # the epoch table shows no interval
    assert "(seed bootstrap, 95%)" in three_section and "permutation p = " in three_section
    assert reason not in three_section
