"""A TopK training step against its floor, and E-member ensembles against E solo steps.

    python benchmarks/step_floor.py [--device cuda] [--batch 4096] [--d-models 128,1024]
        [--d-saes 1024,16384] [--ks 8,32,128] [--members 1,8,32] [--aux-ks 64,128,256,512] [--repeats 5]

1. For each (d_model, d_sae, k): sae_lab's step (`plain_step`: encoder GEMM, topk, sparse decode, backward,
   fused Adam, decoder renormalisation) over the floor, one dense encoder GEMM + topk of the same shapes —
   work no TopK step can skip. Printed as step / floor.
2. For each E in --members, at d_model 128, d_sae 1024, k 32: one E-member step against E one-member
   steps (E · t₁ / t_E: how many solo steps one ensemble step is worth).
3. For each aux_k in --aux-ks, at d_model 128, d_sae 1024, k 32, 5 members (the mod113 Figure 1 AuxK arm at
   aux_k 256): a step with the AuxK loss over a plain TopK step, with every latent counted dead
   (dead_steps -1) so the auxiliary top-k and decode run over all d_sae latents, the cost at its largest;
   once with sae_lab's choice of auxiliary decode and once with the embedding_bag decode forced.
Every timing is the median of --repeats after a warm-up, synchronised on a GPU.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import sae_lab.sae.topk as topk_module
from sae_lab.sae import build_sae
from sae_lab.sae.module import plain_step


def timed(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up (allocations, kernel selection)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_time(d_model: int, d_sae: int, k: int, members: int, batch: int, repeats: int,
              device: torch.device, **options: int) -> float:
    sae = build_sae("topk", d_model, d_sae, list(range(members)), k=k, **options).to(device)
    opt = torch.optim.Adam(sae.parameters(), lr=3e-4, fused=True)
    x = torch.randn(batch, d_model, device=device)
    return timed(lambda: plain_step(sae, opt, x), repeats, device)


def floor_time(d_model: int, d_sae: int, k: int, batch: int, repeats: int, device: torch.device) -> float:
    w = torch.randn(d_sae, d_model, device=device)
    b = torch.zeros(d_sae, device=device)
    x = torch.randn(batch, d_model, device=device)
    return timed(lambda: torch.addmm(b, x, w.T).topk(k, dim=-1, sorted=False), repeats, device)


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--d-models", default="128,1024")
    ap.add_argument("--d-saes", default="1024,16384")
    ap.add_argument("--ks", default="8,32,128")
    ap.add_argument("--members", default="1,8,32")
    ap.add_argument("--aux-ks", default="64,128,256,512")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"device {args.device}; batch {args.batch}; {torch.get_num_threads()} CPU threads")
    for d_model in ints(args.d_models):
        for d_sae in ints(args.d_saes):
            for k in ints(args.ks):
                step = step_time(d_model, d_sae, k, 1, args.batch, args.repeats, device)
                floor = floor_time(d_model, d_sae, k, args.batch, args.repeats, device)
                print(f"d_model {d_model:5d} d_sae {d_sae:6d} k {k:4d}: step {step * 1e3:9.2f} ms, floor "
                      f"{floor * 1e3:9.2f} ms, step / floor = {step / floor:.2f}", flush=True)
    solo = step_time(128, 1024, 32, 1, args.batch, args.repeats, device)
    for members in ints(args.members):
        ens = step_time(128, 1024, 32, members, args.batch, args.repeats, device)
        print(f"ensemble E={members:3d} (d 128 -> 1024, k 32): {ens * 1e3:9.2f} ms per step, {members} solo steps "
              f"{members * solo * 1e3:9.2f} ms; ensemble / solo throughput = {members * solo / ens:.2f}", flush=True)
    plain = step_time(128, 1024, 32, 5, args.batch, args.repeats, device)
    for aux_k in ints(args.aux_ks):
        aux = step_time(128, 1024, 32, 5, args.batch, args.repeats, device, aux_k=aux_k, dead_steps=-1)
        chosen = topk_module.DENSE_DECODE_FRACTION
        topk_module.DENSE_DECODE_FRACTION = 0  # never dense: the embedding_bag decode
        bag = step_time(128, 1024, 32, 5, args.batch, args.repeats, device, aux_k=aux_k, dead_steps=-1)
        topk_module.DENSE_DECODE_FRACTION = chosen
        print(f"AuxK aux_k {aux_k:4d} (E=5, d 128 -> 1024, k 32): step / plain TopK step = {aux / plain:.2f} "
              f"({'dense' if aux_k * chosen > 1024 else 'embedding_bag'} aux decode), {bag / plain:.2f} with the "
              f"embedding_bag aux decode; {plain * 1e3:.2f} ms plain", flush=True)


if __name__ == "__main__":
    torch.set_grad_enabled(True)
    main()
