"""Speed of the cross-seed metrics.

    python benchmarks/agreement_speed.py [--m 16384 --d 2304] [--seeds 20] [--device cpu]
        [--hungarian-m 16384] [--sparse-m 16384,65536] [--neighbours 8]

1. MMCS of two m × d dictionaries against one plain matrix product of the same size (A @ Bᵀ,
   the lower bound: MMCS must at least compute every cosine). Printed as a ratio.
2. All S(S-1)/2 pairwise decoder Hungarian matchings for S dictionaries of 1,024 × 128, in seconds.
3. Exact decoder Hungarian of two hungarian-m-atom dictionaries (the |cos| matrix, then scipy's
   linear_sum_assignment, and lap.lapjv when the `lap` package is installed), for a pair of
   dictionaries that mostly agree (a noisy shuffled copy, like two trained seeds) and a random pair.
4. Sparse Hungarian (each atom's n nearest neighbours) at each sparse-m: time, mean, its upper bound,
   and the exact mean where the exact matching also runs (sparse-m ≤ hungarian-m).
"""

from __future__ import annotations

import argparse
import time
from itertools import combinations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from sae_lab.metrics import decoder_hungarian, mmcs, sparse_hungarian
from sae_lab.metrics.agreement import abs_cosine, normalize_rows, random_dictionaries


def best_of(fn, repeats: int, sync=lambda: None) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def dictionary_pair(kind: str, m: int, d: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """'related': B is A shuffled plus noise of the atoms' own norm (matched |cos| ≈ 0.8, like two
    trained seeds); 'random': independent Gaussian dictionaries (the hardest case for LAP solvers)."""
    if kind == "random":
        a, b = random_dictionaries(2, m, d, seed=0)
    else:
        gen = torch.Generator().manual_seed(0)
        a = normalize_rows(torch.randn(m, d, generator=gen))
        b = normalize_rows(a[torch.randperm(m, generator=gen)] + 0.7 * torch.randn(m, d, generator=gen) / d ** 0.5)
    return a.to(device).contiguous(), b.to(device).contiguous()


def exact_hungarian(a: torch.Tensor, b: torch.Tensor) -> dict:
    out = {}
    start = time.perf_counter()
    sim = abs_cosine(a, b).double().cpu().numpy()
    out["cos matrix"] = time.perf_counter() - start
    start = time.perf_counter()
    rows, cols = linear_sum_assignment(sim, maximize=True)
    out["scipy"] = time.perf_counter() - start
    out["mean"] = float(sim[rows, cols].mean())
    try:
        import lap
    except ImportError:
        return out
    start = time.perf_counter()
    _, x, _ = lap.lapjv(1.0 - sim, extend_cost=False)
    out["lap.lapjv"] = time.perf_counter() - start
    out["lap mean"] = float(sim[np.arange(len(sim)), x].mean())
    return out


def time_mmcs(args: argparse.Namespace, sync) -> None:
    a, b = random_dictionaries(2, args.m, args.d, seed=0)
    a, b = a.to(args.device).contiguous(), b.to(args.device).contiguous()
    t_matmul = best_of(lambda: a @ b.T, args.repeats, sync)
    t_mmcs = best_of(lambda: mmcs(a, b), args.repeats, sync)
    print(f"[{args.device}] MMCS of two {args.m} x {args.d} dictionaries: {t_mmcs:.3f} s; one {args.m}x{args.d} @ "
          f"{args.d}x{args.m} matrix product: {t_matmul:.3f} s; ratio MMCS / matmul = {t_mmcs / t_matmul:.2f}",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, default=16384)
    ap.add_argument("--d", type=int, default=2304)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="where the dictionaries live: cpu, cuda, ...")
    ap.add_argument("--hungarian-m", type=int, default=16384, help="atoms for the exact Hungarian (0: skip)")
    ap.add_argument("--sparse-m", default="16384", help="comma-separated atom counts for the sparse Hungarian")
    ap.add_argument("--neighbours", type=int, default=8)
    ap.add_argument("--pairs", default="related,random", help="dictionary pairs for parts 3 and 4")
    args = ap.parse_args()
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    time_mmcs(args, sync)

    dicts = random_dictionaries(args.seeds, 1024, 128, seed=1)
    pairs = list(combinations(range(args.seeds), 2))
    start = time.perf_counter()
    for i, j in pairs:
        decoder_hungarian(dicts[i], dicts[j])
    t_hung = time.perf_counter() - start
    print(f"{len(pairs)} pairwise decoder Hungarian matchings of 1024 x 128 dictionaries: {t_hung:.1f} s "
          f"({1000 * t_hung / len(pairs):.0f} ms each)", flush=True)

    for kind in args.pairs.split(","):
        exact = {}
        if args.hungarian_m:
            exact = exact_hungarian(*dictionary_pair(kind, args.hungarian_m, args.d, args.device))
            print(f"exact Hungarian, {kind} pair of {args.hungarian_m} x {args.d}: |cos| matrix "
                  f"{exact['cos matrix']:.1f} s, scipy linear_sum_assignment {exact['scipy']:.1f} s"
                  + (f", lap.lapjv {exact['lap.lapjv']:.1f} s" if "lap.lapjv" in exact else " (lap not installed)")
                  + f"; mean matched |cos| {exact['mean']:.5f}", flush=True)
        for m in (int(s) for s in args.sparse_m.split(",") if s):
            pair = dictionary_pair(kind, m, args.d, args.device)
            start = time.perf_counter()
            out = sparse_hungarian(*pair, n_neighbours=args.neighbours)
            elapsed = time.perf_counter() - start
            check = f"; exact {exact['mean']:.5f}" if m == args.hungarian_m and exact else ""
            print(f"sparse Hungarian, {kind} pair of {m} x {args.d}, {out['n_neighbours']} neighbours: "
                  f"{elapsed:.1f} s; "
                  f"mean {out['mean']:.5f}, upper bound {out['upper_bound']:.5f} (shortfall at most "
                  f"{out['max_shortfall']:.5f}){check}", flush=True)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
