"""Speed of one DB-KSVD iteration against a naive K-SVD iteration on the same data.

    python benchmarks/ksvd_speed.py [--n 65536 --d 256 --m 1024 --k 20] [--subset 512] [--atoms 16] [--device cuda]

Data: the synthetic subject's generator (DB-KSVD's toy: amplitudes U[1, 2], noise 0.05), m true atoms.
DB-KSVD (sae_lab.sae.ksvd): one fit_step on all n samples from the U(−½, ½) initialisation, best of
`--repeats`. Naive K-SVD (Aharon et al.): matching pursuit one sample at a time with a matrix-vector
product per pick, then sequential atom updates each with a full SVD of its error matrix. It is too slow to
run on n samples here, so, as the DB-KSVD paper does, it is timed on a part and scaled: its sparse coding
on `--subset` samples (× n / subset), its dictionary update on `--atoms` atoms of the full batch
(× m / atoms). Relative errors (mean ‖y − D x‖ / ‖y‖ after the iteration) are compared on the subset,
where both run whole. Last, DB-KSVD iterations per second beside one TopK SAE epoch (batch 256, Adam) on
the same n samples.
"""

from __future__ import annotations

import argparse
import time

import torch

from sae_lab.models.synthetic import generate
from sae_lab.sae import build_sae
from sae_lab.sae.module import plain_step


def naive_mp(dictionary: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """Codes [B, m] one sample at a time: Dᵀr recomputed from the residual at every pick."""
    codes = torch.zeros(len(y), len(dictionary))
    for i, sample in enumerate(y):
        r = sample.clone()
        for _ in range(k):
            c = dictionary @ r
            j = int(c.abs().argmax())
            codes[i, j] += c[j]
            r -= c[j] * dictionary[j]
    return codes


def naive_update(dictionary: torch.Tensor, y: torch.Tensor, codes: torch.Tensor, atoms: range) -> None:
    """Sequential K-SVD atom updates with a full SVD of each error matrix E_Ω = Y_Ω − D X_Ω + d_j x_j."""
    for j in atoms:
        omega = codes[:, j].nonzero()[:, 0]
        if len(omega) == 0:
            continue
        err = (y[omega] - codes[omega] @ dictionary + codes[omega, j:j + 1] * dictionary[j]).T
        u, s, vh = torch.linalg.svd(err, full_matrices=False)
        dictionary[j], codes[omega, j] = u[:, 0], s[0] * vh[0]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def topk_epoch(y: torch.Tensor, m: int, k: int, batch: int = 256) -> float:
    """Seconds for one epoch of a TopK SAE (the default learner's step: sparse loss, Adam) over y, on
    y's device."""
    sae = build_sae("topk", y.shape[1], m, [0], k=k).to(y.device)
    opt = torch.optim.Adam(sae.parameters(), lr=3e-4)
    sync(y.device)
    start = time.perf_counter()
    for i in range(0, len(y), batch):
        plain_step(sae, opt, y[i:i + batch])
    sync(y.device)
    return time.perf_counter() - start


def relative_error(y: torch.Tensor, x_hat: torch.Tensor) -> float:
    return float(((y - x_hat).norm(dim=-1) / y.norm(dim=-1)).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2**16)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--m", type=int, default=1024)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--subset", type=int, default=512)
    ap.add_argument("--atoms", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="where DB-KSVD and the TopK epoch run; the naive K-SVD "
                                                    "reference always runs on the CPU")
    args = ap.parse_args()
    device = torch.device(args.device)
    n, d, m, k = args.n, args.d, args.m, args.k
    y = generate(d, m, k, 0.0, 1.0, 2.0, 0.05, n, seed=0).observations
    print(f"{torch.get_num_threads()} CPU threads; device {args.device}; n={n}, d={d}, m={m}, k={k}")

    times = []
    y_dev = y.to(device)
    for _ in range(args.repeats):
        sae = build_sae("ksvd", d, m, [0], k=k).to(device)
        sync(device)
        start = time.perf_counter()
        sae.fit_step(y_dev)
        sync(device)
        times.append(time.perf_counter() - start)
    fast = min(times)
    print(f"DB-KSVD: one iteration on {n} samples ({args.device}): {fast:.2f} s (best of {args.repeats})")

    init = build_sae("ksvd", d, m, [0], k=k).decoder()[0]
    sub = y[:args.subset]
    start = time.perf_counter()
    codes = naive_mp(init, sub, k)
    mp_time = (time.perf_counter() - start) * n / len(sub)
    full_codes = torch.zeros(n, m)  # the update's input: DB-KSVD's codes for the full batch (same supports)
    values, indices = build_sae("ksvd", d, m, [0], k=k).sparse_codes(y)
    full_codes.scatter_add_(-1, indices[0], values[0])
    dictionary = init.clone()
    start = time.perf_counter()
    naive_update(dictionary, y, full_codes, range(args.atoms))
    update_time = (time.perf_counter() - start) * m / args.atoms
    slow = mp_time + update_time
    print(f"naive K-SVD: sparse coding {mp_time:.0f} s (timed on {len(sub)} samples), dictionary update "
          f"{update_time:.0f} s (timed on {args.atoms} atoms); {slow:.0f} s estimated per iteration")
    print(f"speed-up: {slow / fast:.0f}x")

    start_err = relative_error(sub, codes @ init)
    dictionary = init.clone()
    naive_update(dictionary, sub, codes, range(m))
    naive_err = relative_error(sub, naive_mp(dictionary, sub, k) @ dictionary)
    sae = build_sae("ksvd", d, m, [0], k=k, duplicate_cos=None)
    sae.fit_step(sub)
    fast_err = relative_error(sub, sae.reconstruct(sub)[0])
    print(f"relative error on the {len(sub)}-sample subset: initialisation {start_err:.4f}, after one iteration "
          f"naive K-SVD {naive_err:.4f}, DB-KSVD {fast_err:.4f}")
    epoch = topk_epoch(y_dev, m, k)
    print(f"one TopK epoch on the same {n} samples (batch 256): {epoch:.2f} s; DB-KSVD: {1 / fast:.3f} iterations/s, "
          f"one iteration = {fast / epoch:.2f} TopK epochs")


if __name__ == "__main__":
    main()
