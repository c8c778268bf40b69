"""Training throughput of sae_lab against bare PyTorch loops, and an E=8 ensemble against 8 solo runs.

    python benchmarks/train_throughput.py [--epochs N] [--members 8] [--repeats R] [--device cuda]

Every loop trains the default TopK SAE (d_sae 1024, k 32, batch 256, Adam 3e-4) on the same cached
mod-113 activations in the same batch order, in this one process. sae_lab runs through
`sae_lab.training.loop.train` on the default budget with its callbacks at their default cadence (metrics,
certificate and snapshots at the budget's eval epochs, checkpoints every 5 epochs; the ensemble
comparison turns off the per-eval cross-member Hungarian, which solo runs have no partners for).
Two references:
- the bare loop: the TopK math as one writes it by hand (dense code, z @ W_dec, torch's default Adam);
- the same-kernel loop: sae_lab's own SAE module and optimiser in a plain loop, no Lightning, no
  callbacks — so sae_lab / same-kernel is what the framework and its evaluations cost.
Printed ratios are throughputs (samples/s; member-samples/s for the ensemble); with --repeats R every
timing is the median of R runs, taken in turn so that slow spells of a shared machine hit all sides.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from sae_lab.config import CONF_DIR, register_configs, validate
from sae_lab.data import epoch_permutation, subject_activations
from sae_lab.models import build_subject
from sae_lab.sae import TopKSAE, init_decoder
from sae_lab.sae.module import SAEModule, plain_step
from sae_lab.training.loop import train


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a timing ends when the work does."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(acts: torch.Tensor, epochs: int, seed: int, d_sae: int = 1024, k: int = 32,
              batch_size: int = 256, lr: float = 3e-4, data_seed: int = 0) -> float:
    """Seconds for `epochs` epochs of hand-written TopK SAE training (on acts' device)."""
    w_dec = init_decoder(seed, d_sae, acts.shape[1]).to(acts.device).requires_grad_()
    w_enc = w_dec.detach().T.clone().requires_grad_()
    b_enc = torch.zeros(d_sae, device=acts.device, requires_grad=True)
    b_dec = torch.zeros(acts.shape[1], device=acts.device, requires_grad=True)
    opt = torch.optim.Adam([w_enc, b_enc, w_dec, b_dec], lr=lr)
    sync(acts.device)
    start = time.perf_counter()
    for epoch in range(epochs):
        perm = epoch_permutation(len(acts), data_seed, epoch)
        for i in range(0, len(acts), batch_size):
            x = acts[perm[i:i + batch_size]]
            pre = (x - b_dec) @ w_enc + b_enc
            vals, idx = pre.topk(k, dim=-1, sorted=False)
            z = torch.zeros_like(pre).scatter_(-1, idx, vals.relu())
            loss = (z @ w_dec + b_dec - x).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                w_dec.grad -= (w_dec.grad * w_dec).sum(-1, keepdim=True) * w_dec
            opt.step()
            with torch.no_grad():
                w_dec /= w_dec.norm(dim=-1, keepdim=True)
    sync(acts.device)
    return time.perf_counter() - start


def same_kernel_loop(acts: torch.Tensor, epochs: int, seeds: list[int], d_sae: int = 1024, k: int = 32,
                     batch_size: int = 256, lr: float = 3e-4, data_seed: int = 0) -> float:
    """Seconds for `epochs` epochs of sae_lab's SAE math and optimiser with no framework around it."""
    sae = TopKSAE(acts.shape[1], d_sae, seeds, k=k).to(acts.device)
    opt = SAEModule(sae, lr=lr).configure_optimizers()
    sync(acts.device)
    start = time.perf_counter()
    for epoch in range(epochs):
        perm = epoch_permutation(len(acts), data_seed, epoch)
        for i in range(0, len(acts), batch_size):
            plain_step(sae, opt, acts[perm[i:i + batch_size]])
    sync(acts.device)
    return time.perf_counter() - start


def sae_lab_run(overrides: list[str], out: Path, cache: Path) -> float:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides + ["progress=false", f"cache_dir={cache}"])
    run_dir = out / "_".join(o.replace("=", "") for o in overrides)
    start = time.perf_counter()
    train(cfg, run_dir)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=None, help="default: the default budget's epochs")
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=1, help="median of this many runs of each timing")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N: every loop and sae_lab's device=")
    args = ap.parse_args()
    device = torch.device(args.device)
    register_configs()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        out, cache = Path(tmp), Path(tmp) / "cache"
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            default = validate(compose("train"))  # resolves layer=null to the subject's default layer
        epochs = args.epochs or int(default.budget.epochs)
        subject = build_subject(default.model)
        acts = subject_activations(subject, subject.hook_name(default.layer), cache).to(device)
        samples = epochs * len(acts)
        # eval/snapshot/checkpoint cadence: the budget's own
        budget = [f"budget.epochs={epochs}", f"device={args.device}"]
        sae_lab_run(["budget.epochs=1", f"device={args.device}"], out / "warmup", cache)  # first-call costs
        print(f"budget {default.budget.name if 'name' in default.budget else ''}: {epochs} epochs of "
              f"{len(acts)} samples; device {args.device}; {torch.get_num_threads()} CPU threads")

        n = args.members
        # Cross-member Hungarian at every eval is work the solo runs cannot do; leave it out of both.
        same = budget + ["agreement_hungarian=false"]
        timings: dict[str, list[float]] = {}
        for rep in range(args.repeats):
            fresh = out / f"repeat{rep}"  # a run dir of an earlier repeat would resume, not train
            for name, measure in [
                ("bare", lambda: bare_loop(acts, epochs, seed=0)),
                ("same", lambda: same_kernel_loop(acts, epochs, seeds=[0])),
                ("lab", lambda fresh=fresh: sae_lab_run(budget + ["seed=0"], fresh, cache)),
                # the default cadence without patched CE (the references never run the subject model)
                ("nobeh", lambda fresh=fresh: sae_lab_run(budget + ["seed=0", "behaviour.enabled=false"],
                                                          fresh / "nobeh", cache)),
                # evals only at epochs 0, 1 and the last: what the framework itself costs
                ("few", lambda fresh=fresh: sae_lab_run(budget + ["seed=0", "budget.n_evals=2"], fresh / "few", cache)),
                ("solo", lambda fresh=fresh: sum(sae_lab_run(same + [f"seed={s}"], fresh / "solo", cache)
                                                 for s in range(n))),
                ("ens", lambda fresh=fresh: sae_lab_run(same + ["seed=0", f"ensemble={n}"], fresh / "ens", cache)),
                ("loop_ens", lambda: same_kernel_loop(acts, epochs, seeds=list(range(n)))),
            ]:
                timings.setdefault(name, []).append(measure())
        t_bare, t_same, t_lab, t_nobeh, t_few, t_solo, t_ens, t_loop_ens = (
            statistics.median(timings[k]) for k in ("bare", "same", "lab", "nobeh", "few", "solo", "ens", "loop_ens"))
        print(f"bare loop (by hand)    : {samples / t_bare:8.0f} samples/s ({t_bare:.1f} s)")
        print(f"same-kernel loop       : {samples / t_same:8.0f} samples/s ({t_same:.1f} s)")
        print(f"sae_lab train()        : {samples / t_lab:8.0f} samples/s ({t_lab:.1f} s, incl. setup, "
              f"default callback cadence)")
        print(f"sae_lab, no patched CE : {samples / t_nobeh:8.0f} samples/s ({t_nobeh:.1f} s)")
        print(f"sae_lab, 3 evals only  : {samples / t_few:8.0f} samples/s ({t_few:.1f} s)")
        print(f"ratio sae_lab / bare loop = {t_bare / t_lab:.2f} (without patched CE: {t_bare / t_nobeh:.2f})")
        print(f"ratio sae_lab / same-kernel loop = {t_same / t_lab:.2f} (3 evals only: {t_same / t_few:.2f})")

        print(f"{n} solo runs            : {n * samples / t_solo:8.0f} member-samples/s ({t_solo:.1f} s)")
        print(f"ensemble={n}             : {n * samples / t_ens:8.0f} member-samples/s ({t_ens:.1f} s)")
        print(f"ratio ensemble / solo runs = {t_solo / t_ens:.2f}")
        print(f"same-kernel loop, E={n} over E=1 (the math alone) = {n * t_same / t_loop_ens:.2f}")


if __name__ == "__main__":
    main()
