"""What `make reproduce-table4` costs at Pythia-410M shape, measured on random data of that shape.

Table 4: d_model 1024, 200K activation vectors, batch 4,096 (49 steps per epoch), d_sae 512/1024/2048/4096,
3 seeds as ensemble=3, 200 epochs. This times the training step (TopK k 32, Adam, the same kernels as
train.py; evaluation, patched CE and the report are not included) for a few steps of each d_sae on this
machine, scales to 200 epochs, and estimates a GPU's time from the step's FLOPs (~4·B·d·m per member:
encoder forward and its weight gradient; the sparse decoder is B·k·d) at an assumed sustained rate.

    python benchmarks/table4_cost.py [--steps 3] [--gpu-tflops 25]
"""

from __future__ import annotations

import argparse
import time

import torch

from sae_lab.sae import build_sae
from sae_lab.sae.module import plain_step

D_MODEL, N_VECTORS, BATCH, EPOCHS, SEEDS, K = 1024, 200_000, 4096, 200, 3, 32
D_SAES = (512, 1024, 2048, 4096)


def step_seconds(d_sae: int, steps: int) -> float:
    sae = build_sae("topk", D_MODEL, d_sae, list(range(SEEDS)), k=K)
    opt = torch.optim.Adam(sae.parameters(), lr=3e-4, fused=True)
    x = torch.randn(BATCH, D_MODEL)
    plain_step(sae, opt, x)  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        plain_step(sae, opt, x)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--gpu-tflops", type=float, default=25.0,
                        help="assumed sustained float32 TFLOP/s of the GPU for the estimate")
    args = parser.parse_args()
    steps_per_epoch = -(-N_VECTORS // BATCH)
    print(f"Table 4 shape: d_model {D_MODEL}, {N_VECTORS} vectors, batch {BATCH} ({steps_per_epoch} steps/epoch), "
          f"ensemble={SEEDS}, {EPOCHS} epochs; {torch.get_num_threads()} CPU threads")
    total_cpu = total_gpu = 0.0
    for d_sae in D_SAES:
        cpu = step_seconds(d_sae, args.steps)
        flops = 4 * BATCH * D_MODEL * d_sae * SEEDS
        gpu = flops / (args.gpu_tflops * 1e12)
        total_cpu += cpu * steps_per_epoch * EPOCHS
        total_gpu += gpu * steps_per_epoch * EPOCHS
        print(f"d_sae {d_sae:5d}: CPU {cpu:7.3f} s/step, {cpu * steps_per_epoch:7.1f} s/epoch (measured); "
              f"GPU {gpu * 1e3:6.2f} ms/step, {gpu * steps_per_epoch:6.2f} s/epoch (estimated)")
    print(f"Training total, 4 d_sae x {EPOCHS} epochs: CPU {total_cpu / 3600:.1f} h (measured steps, scaled); "
          f"GPU {total_gpu / 60:.1f} min at {args.gpu_tflops:g} TFLOP/s (estimate from FLOPs)")


if __name__ == "__main__":
    main()
