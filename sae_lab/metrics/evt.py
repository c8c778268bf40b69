"""The extreme-value null for MMCS (docs/metrics.md, "EVT null"), by numerical integration.

For independent uniform unit vectors in R^d, z = <u, v> has (z + 1)/2 ~ Beta((d-1)/2, (d-1)/2).
With F(t) = P(|z| <= t), the expected maximum of m independent |z| is E_m = ∫_0^1 (1 - F(t)^m) dt.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import integrate, special


def abs_inner_product_tail(t: np.ndarray | float, d: int) -> np.ndarray:
    """P(|z| > t) = 2 P((z+1)/2 > (1+t)/2), computed as a regularised upper incomplete beta."""
    a = (d - 1) / 2
    return 2 * special.betaincc(a, a, (1 + np.asarray(t, dtype=np.float64)) / 2)


@lru_cache(maxsize=1024)
def evt_null(d: int, m: int) -> float:
    """E_m(d): expected max over m atoms of |cos| with a random unit vector; the null MMCS."""
    if d < 2 or m < 1:
        raise ValueError(f"evt_null needs d >= 2 and m >= 1, got d={d}, m={m}.")

    def integrand(t: float) -> float:
        tail = float(abs_inner_product_tail(t, d))
        # 1 - (1 - tail)^m without cancellation when tail is tiny.
        return -math.expm1(m * math.log1p(-tail)) if tail < 1 else 1.0

    # The integrand falls from 1 to 0 around t* ≈ sqrt(2 log(2m) / d); tell quad where.
    t_star = min(0.99, math.sqrt(2 * math.log(2 * m) / max(d, 1)))
    points = sorted({t_star / 2, t_star, min(0.999, 1.5 * t_star), min(0.999, 2 * t_star)})
    value, _ = integrate.quad(integrand, 0.0, 1.0, points=points, limit=500, epsabs=1e-12, epsrel=1e-10)
    return float(value)
