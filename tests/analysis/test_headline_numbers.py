"""The report's headline, pinned to computations done here: hand-built 3-seed conditions whose pairwise MMCS
is known in closed form, the seed bootstrap enumerated exhaustively, the permutation p worked out by
counting, the equivalence rule of the metrics doc written out, and the random-pair baseline against a
Monte Carlo written here and the EVT null."""

from __future__ import annotations

import csv
import math
import re
from itertools import product

import numpy as np
import pytest
import torch

from sae_lab.analysis import build_report
from sae_lab.metrics.agreement import random_baseline_mmcs
from sae_lab.metrics.evt import evt_null
from tests.helpers.hand_runs import make_run

M, D = 4, 16  # atoms per dictionary, d_model
MARGIN = 0.005  # the metrics doc's equivalence margin
LINE = re.compile(r"MMCS (?P<mmcs>[\d.]+), EVT null (?P<null>[\d.]+), gap (?P<gap>[+-][\d.]+) "
                  r"\[(?P<low>[+-][\d.]+), (?P<high>[+-][\d.]+)\] \(seed bootstrap, 95%\); random-pair MMCS "
                  r"[\d.]+ ± [\d.]+; permutation p = (?P<p>[\d.e-]+); (?P<verdict>[a-z ]+) \(margin")


def shared_direction_dictionary(i: int, c: float) -> torch.Tensor:
    """Atom j = sqrt(c) u_j + sqrt(1 - c) e_ij, with u_j and e_ij orthonormal: any two such dictionaries
    (i != i') have |cos| = c between atoms j and j and 0 otherwise, so their MMCS is exactly c."""
    eye = torch.eye(D)
    return torch.stack([c ** 0.5 * eye[j] + (1 - c) ** 0.5 * eye[M + i * M + j] for j in range(M)])


def report(root, decoders: dict[int, torch.Tensor]) -> tuple[dict, dict]:
    for seed, decoder in decoders.items():
        make_run(root, f"s{seed}", {"sae": {"architecture": "topk"}, "d_sae": M, "seed": seed},
                 {0: decoder, 1: decoder})
    summary = build_report(root, n_resamples=2000, progress=False)
    with open(summary.parent / "final.csv") as f:
        final = next(csv.DictReader(f))
    match = LINE.search(summary.read_text())
    assert match, summary.read_text()
    return final, {k: (v if k == "verdict" else float(v)) for k, v in match.groupdict().items()}


def verdict_by_the_rule(low: float, high: float) -> str:
    """Equivalent to the null when the whole 95% CI of the gap lies inside ±margin."""
    return "equivalent to the null" if -MARGIN <= low and high <= MARGIN else "not shown equivalent to the null"


def exact_permutation_p(trained: list[float], n_random: int, random_below: float) -> float:
    """Two-sided permutation p when every random value is below every trained value and the trained values
    are equal: only the labelling that puts all trained values in the trained group reaches the observed
    difference, so p = 1 / C(n_trained + n_random, n_trained)."""
    assert max(trained) == min(trained) and random_below < min(trained)
    return 1 / math.comb(len(trained) + n_random, len(trained))


@pytest.mark.parametrize("offset, equivalent", [(0.5, False), (0.002, True), (-0.003, True), (0.02, False)])
def test_gap_ci_p_and_verdict_when_every_pair_has_the_same_mmcs(tmp_path, offset, equivalent):
    null = evt_null(D, M)
    c = null + offset
    final, line = report(tmp_path, {s: shared_direction_dictionary(s - 1, c) for s in (1, 2, 3)})
    assert line["mmcs"] == pytest.approx(c, abs=1e-4) and line["null"] == pytest.approx(null, abs=1e-4)
    assert line["gap"] == pytest.approx(offset, abs=1e-4)
    # every seed resample gives the same mean: the CI has zero width, at the gap
    assert line["low"] == pytest.approx(offset, abs=1e-4) and line["high"] == pytest.approx(offset, abs=1e-4)
    expected = verdict_by_the_rule(offset, offset)
    assert (expected == "equivalent to the null") is equivalent
    assert final["verdict"] == expected and line["verdict"] == expected
    if offset == 0.5:  # far above every random pair: the exact permutation p (10 random pairs, 3 trained)
        p = exact_permutation_p([c] * 3, 10, random_below=c - 0.3)
        assert line["p"] == pytest.approx(p, abs=2e-3)  # the report prints 3 decimals; 10,000 permutations
        assert line["p"] < 0.01


def test_seed_bootstrap_ci_equals_the_enumerated_resamples(tmp_path):
    # seeds 1 and 2 share one dictionary (MMCS 1); seed 3's atoms are orthogonal to theirs (MMCS 0)
    eye = torch.eye(D)
    same, other = eye[:M], eye[M:2 * M]
    final, line = report(tmp_path, {1: same, 2: same.clone(), 3: other})
    null = evt_null(D, M)
    pair = {frozenset((1, 2)): 1.0, frozenset((1, 3)): 0.0, frozenset((2, 3)): 0.0}
    means = []  # every one of the 27 equally likely seed resamples with at least two distinct seeds
    for draw in product((1, 2, 3), repeat=3):
        distinct = sorted(set(draw))
        if len(distinct) >= 2:
            values = [pair[frozenset((a, b))] for i, a in enumerate(distinct) for b in distinct[i + 1:]]
            means.append(sum(values) / len(values) - null)
    means = np.array(means)
    # the 2.5% and 97.5% points of that distribution: half the resamples give 0, a quarter give 1
    low, high = np.quantile(means, [0.025, 0.975])
    assert low == pytest.approx(-null) and high == pytest.approx(1 - null)
    assert line["gap"] == pytest.approx(1 / 3 - null, abs=1e-4)
    assert line["low"] == pytest.approx(low, abs=1e-4) and line["high"] == pytest.approx(high, abs=1e-4)
    assert final["verdict"] == verdict_by_the_rule(low, high) == "not shown equivalent to the null"


def _mmcs_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    """The metrics doc's MMCS with explicit loops: ½ [mean_i max_j |cos| + mean_j max_i |cos|]."""
    def cos(u, v):
        return abs(float(u @ v)) / (np.linalg.norm(u) * np.linalg.norm(v))

    one = np.mean([max(cos(x, y) for y in b) for x in a])
    two = np.mean([max(cos(x, y) for x in a) for y in b])
    return 0.5 * (one + two)


def test_random_pair_baseline_against_monte_carlo_and_the_evt_null():
    m, d, draws = 16, 8, 200
    baseline = random_baseline_mmcs(m, d, draws=draws, seed=0)
    rng = np.random.default_rng(123)
    ours = np.array([_mmcs_by_hand(rng.standard_normal((m, d)), rng.standard_normal((m, d))) for _ in range(draws)])
    se = math.sqrt(baseline.var(ddof=1) / draws + ours.var(ddof=1) / draws)
    assert abs(baseline.mean() - ours.mean()) <= 4 * se
    assert abs(baseline.mean() - evt_null(d, m)) <= 4 * baseline.std(ddof=1) / math.sqrt(draws)
    assert len(set(baseline.round(12))) == draws  # independent pairs, not one pair repeated
