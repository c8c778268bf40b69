"""The EVT null against its checks in docs/metrics.md and Monte Carlo with real random unit vectors."""

import numpy as np
import pytest
import torch

from sae_lab.metrics.agreement import max_abs_cosines, normalize_rows
from sae_lab.metrics.evt import abs_inner_product_tail, evt_null


def test_documented_values():
    assert evt_null(128, 1024) == pytest.approx(0.2989, abs=1.5e-4)
    assert evt_null(1024, 1024) == pytest.approx(0.1073, abs=1e-4)


def test_closed_forms():
    # m = 1: E|z|; for d = 3, z is uniform on [-1, 1] (Archimedes), so E|z| = 1/2.
    assert evt_null(3, 1) == pytest.approx(0.5, rel=1e-9)
    # d = 3, m atoms: E max of m U[0,1] = m/(m+1)
    assert evt_null(3, 4) == pytest.approx(4 / 5, rel=1e-9)
    assert float(abs_inner_product_tail(0.25, 3)) == pytest.approx(0.75)
    assert evt_null(128, 2048) > evt_null(128, 1024) > evt_null(256, 1024)


def _monte_carlo(d, m, draws=20, rows=512, seed=0):
    """Mean over `rows` random unit vectors of max_j |cos| against m fresh random atoms, per draw."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(draws):
        u = normalize_rows(torch.randn(min(rows, m), d, generator=g))
        v = normalize_rows(torch.randn(m, d, generator=g))
        out.append(max_abs_cosines(u, v)[0].double().mean().item())
    return np.mean(out), np.std(out, ddof=1) / np.sqrt(draws)


@pytest.mark.parametrize("d, m", [(64, 128), (64, 16384), (128, 1024), (512, 1024), (768, 1024),
                                  (1024, 1024), (2304, 128), (2304, 16384)])
def test_within_three_standard_errors_of_monte_carlo(d, m):
    rows = 2048 if m >= 1024 else 512
    estimate, se = _monte_carlo(d, m, rows=rows)
    predicted = evt_null(d, m)
    assert abs(predicted - estimate) < 3 * se
    if m >= 1024:
        assert abs(predicted - estimate) / estimate < 0.003
