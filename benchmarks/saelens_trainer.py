"""SAELens's own trainer on cached activations: the peer side of benchmarks/saelens_compare.py.

    <SAELens venv>/bin/python benchmarks/saelens_trainer.py ACTS.safetensors [--epochs 30] [--seed 1]

Runs in SAELens's venv (it cannot be imported beside TransformerLens 4). Trains SAELens's TopK SAE
(`TopKTrainingSAE`, its `SAETrainer`, Adam at a constant lr, no W&B, no checkpoints, no evals) on the
activations in ACTS (key "acts", [N, d_in]) for the same job as sae_lab's default: d_sae 1,024, k 32,
batch 256, lr 3e-4, ceil(N / 256) steps per epoch, each epoch a fresh permutation. AuxK is off
(aux_loss_coefficient 0), as in sae_lab's default. Prints the final MSE so a broken run is visible.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TQDM_DISABLE", "1")  # SAELens's progress bar: not part of the job

import torch  # noqa: E402
from sae_lens import LoggingConfig, SAETrainer, TopKTrainingSAE, TopKTrainingSAEConfig  # noqa: E402
from sae_lens.config import SAETrainerConfig  # noqa: E402
from safetensors.torch import load_file  # noqa: E402


def batches(acts: torch.Tensor, batch_size: int, seed: int):  # noqa: ANN201 (an endless iterator)
    gen, epoch = torch.Generator().manual_seed(seed), 0
    while True:
        perm = torch.randperm(len(acts), generator=gen)
        for i in range(0, len(acts), batch_size):
            yield acts[perm[i:i + batch_size]]
        epoch += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("acts")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--d-sae", type=int, default=1024)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    acts = load_file(args.acts)["acts"].float()
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=acts.shape[1], d_sae=args.d_sae, k=args.k,
                                                aux_loss_coefficient=0.0, device="cpu"))
    cfg = SAETrainerConfig(total_training_samples=args.epochs * len(acts), train_batch_size_samples=args.batch_size,
                           lr=args.lr, lr_end=args.lr, device="cpu", logger=LoggingConfig(log_to_wandb=False))
    trainer = SAETrainer(cfg=cfg, sae=sae, data_provider=batches(acts, args.batch_size, args.seed))
    trainer.fit()
    with torch.no_grad():
        x = acts[:4096]
        mse = (sae.decode(sae.encode(x)) - x).pow(2).mean().item()
    print(f"SAELENS steps={trainer.n_training_steps} mse={mse:.4f}")


if __name__ == "__main__":
    main()
