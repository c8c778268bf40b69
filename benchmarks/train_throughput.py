"""Training throughput of sae_lab against a bare PyTorch loop, and an E=8 ensemble against 8 solo runs.

    python benchmarks/train_throughput.py [--epochs 20]

Both sides train the default TopK SAE (d_sae 1024, k 32, batch 256, Adam 3e-4) on the same cached
mod-113 activations in the same batch order. sae_lab runs through `sae_lab.train.train` with its
callbacks at their default cadence (metrics, certificate and snapshots at the budget's eval
epochs, checkpoints every 5 epochs; the ensemble comparison turns off the per-eval cross-member
Hungarian, which solo runs have no partners for); the
bare loop does only the TopK math, Adam, the decoder-gradient projection and renormalisation.
Printed ratios are throughputs (samples/s, member-samples/s for the ensemble) in this same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from sae_lab.config import CONF_DIR, register_configs
from sae_lab.data import epoch_permutation, subject_activations
from sae_lab.models import build_subject
from sae_lab.sae import init_decoder
from sae_lab.train import train


def bare_loop(acts: torch.Tensor, epochs: int, seed: int, d_sae: int = 1024, k: int = 32,
              batch_size: int = 256, lr: float = 3e-4, data_seed: int = 0) -> float:
    """Seconds for `epochs` epochs of plain-PyTorch TopK SAE training."""
    w_dec = init_decoder(seed, d_sae, acts.shape[1]).requires_grad_()
    w_enc = w_dec.detach().T.clone().requires_grad_()
    b_enc = torch.zeros(d_sae, requires_grad=True)
    b_dec = torch.zeros(acts.shape[1], requires_grad=True)
    opt = torch.optim.Adam([w_enc, b_enc, w_dec, b_dec], lr=lr)
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
    return time.perf_counter() - start


def sae_lab_run(overrides: list[str], out: Path) -> float:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides + ["progress=false", f"cache_dir={out / 'cache'}"])
    run_dir = out / "_".join(o.replace("=", "") for o in overrides)
    start = time.perf_counter()
    train(cfg, run_dir)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--members", type=int, default=8)
    args = ap.parse_args()
    register_configs()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        subject = build_subject("mod113")
        hook = subject.hook_name(1)
        acts = subject_activations(subject, hook, out / "cache")
        samples = args.epochs * len(acts)
        budget = [f"budget.epochs={args.epochs}"]  # eval/snapshot/checkpoint cadence: the budget default
        sae_lab_run(budget + ["budget.epochs=1"], out / "warmup")  # imports, cache, first-call costs

        t_bare = bare_loop(acts, args.epochs, seed=0)
        t_lab = sae_lab_run(budget + ["seed=0"], out)
        print(f"bare PyTorch loop : {samples / t_bare:10.0f} samples/s ({t_bare:.1f} s)")
        print(f"sae_lab train()   : {samples / t_lab:10.0f} samples/s ({t_lab:.1f} s, incl. setup, "
              f"default callback cadence)")
        print(f"ratio sae_lab / bare loop = {t_bare / t_lab:.2f}")
        # The same run with evals only at epochs 0, 1 and the last: what the framework itself costs.
        t_few = sae_lab_run(budget + ["seed=0", "budget.n_evals=2"], out / "few")
        print(f"sae_lab, 3 evals  : {samples / t_few:10.0f} samples/s ({t_few:.1f} s); "
              f"ratio to bare loop = {t_bare / t_few:.2f}")

        # Cross-member Hungarian at every eval is work the solo runs cannot do; leave it out of both.
        same = budget + ["agreement_hungarian=false"]
        t_solo = sum(sae_lab_run(same + [f"seed={s}"], out / "solo") for s in range(args.members))
        t_ens = sae_lab_run(same + ["seed=0", f"ensemble={args.members}"], out / "ens")
        print(f"{args.members} solo runs      : {args.members * samples / t_solo:10.0f} member-samples/s "
              f"({t_solo:.1f} s)")
        print(f"ensemble={args.members}        : {args.members * samples / t_ens:10.0f} member-samples/s "
              f"({t_ens:.1f} s)")
        print(f"ratio ensemble / solo runs = {t_solo / t_ens:.2f}")


if __name__ == "__main__":
    main()
