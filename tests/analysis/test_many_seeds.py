"""Conditions with many seeds: one-to-one matchings before the final epoch use the first seeds' pairs."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from sae_lab.analysis.conditions import group_conditions
from sae_lab.analysis.pairwise import HUNGARIAN_SEEDS, trajectory
from sae_lab.analysis.runs import load_runs
from sae_lab.metrics import decoder_hungarian, mmcs
from tests.helpers.hand_runs import make_run, random_decoder

SEEDS = range(1, 9)  # 8 seeds: 28 pairs, of which 15 among the first 6


def test_matchings_before_the_final_epoch_use_the_first_seeds_pairs(tmp_path):
    decoders = {s: {0: random_decoder(100 + s), 5: random_decoder(200 + s)} for s in SEEDS}
    for s in SEEDS:
        make_run(tmp_path, f"seed{s}", {"sae": {"architecture": "topk"}, "d_sae": 8, "seed": s}, decoders[s])
    (cond,) = group_conditions(load_runs(tmp_path))
    rows, pairs = trajectory(cond, n_resamples=100)
    first = pairs[pairs["epoch"] == 0]
    matched = [(a, b) for a, b in combinations(SEEDS, 2) if b <= HUNGARIAN_SEEDS]
    assert len(first) == 28 and first["hungarian_mean"].notna().sum() == len(matched) == 15
    expected = np.mean([decoder_hungarian(decoders[a][0], decoders[b][0])["mean"] for a, b in matched])
    assert rows[0]["hungarian_mean"] == pytest.approx(expected, rel=1e-12)
    assert rows[0]["mmcs"] == pytest.approx(np.mean([mmcs(decoders[a][0], decoders[b][0])
                                                     for a, b in combinations(SEEDS, 2)]), rel=1e-9)
    final = pairs[pairs["epoch"] == 5]
    assert final["hungarian_mean"].notna().all() and final["signed_hungarian_mean"].notna().all()
    assert rows[1]["hungarian_mean"] == pytest.approx(
        np.mean([decoder_hungarian(decoders[a][5], decoders[b][5])["mean"] for a, b in combinations(SEEDS, 2)]))
