"""What the Pythia presets cost (Table 4, Table 3, the proxy gap), measured on random data of their shapes.

For every distinct SAE shape a preset trains (d_model, d_sae, k, ensemble, batch 4,096) this times the
training step (TopK, Adam, the same kernels as train.py, `plain_step`) for a few steps on this machine and
scales by the preset's steps; a GPU's time is estimated from the step's FLOPs (~4·B·d·m per member:
encoder forward and its weight gradient; the sparse decoder is B·k·d) at an assumed sustained rate. Not
included: evaluation, patched CE, the report, and building the activation caches (given as FLOPs,
2 × parameters × tokens per cache: an upper bound, the whole model's forward).

    python benchmarks/preset_cost.py [--preset table4,table3,proxy_gap] [--steps 2] [--gpu-tflops 25] [--device cuda]

The shapes below are the presets' (conf/experiment/table4.yaml, table3.yaml, proxy_gap.yaml); d_model and
parameter counts are Pythia's.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch

from sae_lab.sae import build_sae
from sae_lab.sae.module import plain_step

BATCH = 4096
PYTHIA = {"70m": (512, 70e6), "160m": (768, 160e6), "410m": (1024, 410e6)}  # d_model, parameters
GRID = (512, 1024, 2048, 4096)


@dataclass(frozen=True)
class Job:
    """One SAE run of a preset: its shape and budget, and how many such runs the preset has."""
    model: str
    d_sae: int
    k: int
    ensemble: int
    vectors: int
    epochs: int
    count: int = 1


def preset_jobs(name: str) -> tuple[list[Job], list[tuple[str, int]]]:
    """(SAE runs, activation caches as (model, tokens)) of a preset."""
    if name == "table4":  # 410M layer 21, 200K vectors, 200 epochs, 3 seeds as one ensemble
        return [Job("410m", m, 32, 3, 200_000, 200) for m in GRID], [("410m", 200_000)]
    if name == "table3":  # five (model, layer) rows, the d_sae grid, 10 epochs, 3 seeds as one ensemble
        rows = {"70m": 1, "160m": 2, "410m": 2}
        return ([Job(model, m, 32, 3, 200_000, 10, count=n) for model, n in rows.items() for m in GRID],
                [(model, 200_000) for model, n in rows.items() for _ in range(n)])
    if name == "proxy_gap":  # k 8..256 (timed at 32), 70M/410M x 3 depths + 160M mid, d_sae 32 d, 10M tokens once
        depths = {"70m": 3, "160m": 1, "410m": 3}
        return ([Job(model, 32 * PYTHIA[model][0], 32, 1, 10_000_000, 1, count=6 * n) for model, n in depths.items()],
                [(model, 10_000_000) for model, n in depths.items() for _ in range(n)])
    raise SystemExit(f"--preset {name} is not one of table4, table3, proxy_gap.")


def step_seconds(d_model: int, d_sae: int, k: int, ensemble: int, steps: int, device: torch.device) -> float:
    sae = build_sae("topk", d_model, d_sae, list(range(ensemble)), k=k).to(device)
    opt = torch.optim.Adam(sae.parameters(), lr=3e-4, fused=True)
    x = torch.randn(BATCH, d_model, device=device)
    plain_step(sae, opt, x)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        plain_step(sae, opt, x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="table4,table3,proxy_gap")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--gpu-tflops", type=float, default=25.0,
                        help="assumed sustained float32 TFLOP/s of the GPU for the estimate")
    parser.add_argument("--device", default="cpu", help="where the steps are timed (the 'CPU' column: measured "
                                                        "there); the GPU column stays the FLOP estimate")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"batch {BATCH}; steps timed on {args.device}; {torch.get_num_threads()} CPU threads; GPU at an assumed "
          f"{args.gpu_tflops:g} TFLOP/s")
    measured: dict[tuple, float] = {}
    for name in args.preset.split(","):
        jobs, caches = preset_jobs(name)
        total_cpu = total_gpu = 0.0
        for job in jobs:
            d_model = PYTHIA[job.model][0]
            shape = (d_model, job.d_sae, job.k, job.ensemble)
            if shape not in measured:
                measured[shape] = step_seconds(*shape, args.steps, device)
            steps = -(-job.vectors // BATCH) * job.epochs * job.count
            gpu_step = 4 * BATCH * d_model * job.d_sae * job.ensemble / (args.gpu_tflops * 1e12)
            total_cpu += measured[shape] * steps
            total_gpu += gpu_step * steps
            print(f"{name}: pythia-{job.model} d {d_model} d_sae {job.d_sae:5d} ensemble {job.ensemble} x{job.count}: "
                  f"CPU {measured[shape]:7.3f} s/step (measured), GPU {gpu_step * 1e3:7.2f} ms/step (estimated), "
                  f"{steps} steps", flush=True)
        cache_flops = sum(2 * PYTHIA[model][1] * tokens for model, tokens in caches)
        print(f"{name}: SAE training CPU {total_cpu / 3600:.1f} h (measured steps, scaled), GPU "
              f"{total_gpu / 60:.1f} min (estimate from FLOPs); {len(caches)} activation cache(s): "
              f"{cache_flops / 1e15:.2f} PFLOP of model forward, {cache_flops / (args.gpu_tflops * 1e12) / 60:.1f} "
              f"GPU min at the same rate (estimate)", flush=True)


if __name__ == "__main__":
    main()
