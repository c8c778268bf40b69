"""Speed of the cross-seed metrics.

    python benchmarks/agreement_speed.py [--m 16384 --d 2304] [--seeds 20]

1. MMCS of two m × d dictionaries against one plain matrix product of the same size (A @ Bᵀ,
   the lower bound: MMCS must at least compute every cosine). Printed as a ratio.
2. All S(S-1)/2 pairwise decoder Hungarian matchings for S dictionaries of 1,024 × 128, in seconds.
"""

from __future__ import annotations

import argparse
import time
from itertools import combinations

import torch

from sae_lab.metrics import decoder_hungarian, mmcs
from sae_lab.metrics.agreement import random_dictionaries


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, default=16384)
    ap.add_argument("--d", type=int, default=2304)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    a, b = random_dictionaries(2, args.m, args.d, seed=0)
    a, b = a.contiguous(), b.contiguous()
    t_matmul = best_of(lambda: a @ b.T, args.repeats)
    t_mmcs = best_of(lambda: mmcs(a, b), args.repeats)
    print(f"MMCS of two {args.m} x {args.d} dictionaries: {t_mmcs:.2f} s; one {args.m}x{args.d} @ "
          f"{args.d}x{args.m} matrix product: {t_matmul:.2f} s; ratio MMCS / matmul = {t_mmcs / t_matmul:.2f}")

    dicts = random_dictionaries(args.seeds, 1024, 128, seed=1)
    pairs = list(combinations(range(args.seeds), 2))
    start = time.perf_counter()
    for i, j in pairs:
        decoder_hungarian(dicts[i], dicts[j])
    t_hung = time.perf_counter() - start
    print(f"{len(pairs)} pairwise decoder Hungarian matchings of 1024 x 128 dictionaries: {t_hung:.1f} s "
          f"({1000 * t_hung / len(pairs):.0f} ms each)")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
