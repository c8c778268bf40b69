"""Dead-feature resampling (Bricken et al. 2023, "Towards Monosemanticity"), on any architecture.

Every `every_epochs` epochs, features that fired on none of the training inputs are re-initialised
towards inputs sampled with probability ∝ their squared reconstruction loss: decoder row = the
normalised (b_dec-centred) input, encoder column = the same direction scaled so the feature's
pre-activation on that input is the lower quartile of live activations, encoder bias 0, and Adam's
moments for those entries zeroed. Candidates come from a pool of
`pool_size` training inputs drawn with `data_seed` (`shared`: identical for every seed) or with the
member's own seed (`seed`); `none` turns it off. Each event is a row of resampling.csv and a logged metric.
"""

from __future__ import annotations

import lightning as L
import torch

from sae_lab.artifacts import RunDir, write_csv
from sae_lab.callbacks.checkpoint import epoch_completed
from sae_lab.metrics import firing_counts
from sae_lab.sae.base import MemberSAE


def candidate_pool(n_inputs: int, pool_size: int, pool: str, data_seed: int, seed: int, epoch: int
                   ) -> tuple[torch.Tensor, torch.Generator]:
    """Indices of the candidate inputs and the generator that then samples among them."""
    base = data_seed if pool == "shared" else seed
    gen = torch.Generator().manual_seed(int(base) * 1_000_003 + int(epoch) + (0 if pool == "shared" else 7))
    return torch.randperm(n_inputs, generator=gen)[:pool_size], gen


@torch.no_grad()
def dead_features(sae: MemberSAE, data: torch.Tensor, chunk_size: int = 4096) -> torch.Tensor:
    """[E, m] bool: features that fire on none of `data`."""
    counts = sum(firing_counts(sae(data[i:i + chunk_size])[0]) for i in range(0, len(data), chunk_size))
    return counts == 0


@torch.no_grad()
def resample_member(sae: MemberSAE, optimizer: torch.optim.Optimizer | None, member: int,
                    dead: torch.Tensor, candidates: torch.Tensor, gen: torch.Generator) -> int:
    """Re-initialise `member`'s dead features from `candidates` [P, d]; returns how many."""
    idx = dead.nonzero().flatten()
    if len(idx) == 0:
        return 0
    z, x_hat = sae(candidates)
    z, x_hat = z[member], x_hat[member]
    weights = (x_hat - candidates).pow(2).sum(-1).pow(2)
    weights = weights if weights.sum() > 0 else torch.ones_like(weights)
    chosen = torch.multinomial(weights.cpu(), len(idx), replacement=len(idx) > len(candidates), generator=gen)
    # Centred like the encoder's input: the shared mean would make a new feature fire everywhere.
    centred = candidates[chosen.to(candidates.device)] - sae.b_dec[member]
    norms = centred.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    directions = centred / norms
    sae.W_dec[member, idx] = directions
    if not sae.tied:
        # A revived feature's pre-activation on its own input is the lower quartile of live activations:
        # enough to fire there, not enough to crowd out live features under TopK's fixed budget (with
        # Bricken et al.'s 0.2 × encoder-norm rule, or the median, alive fraction fell after an event).
        active = z[z > 0]
        level = active.kthvalue(max(1, len(active) // 4)).values if len(active) else torch.tensor(1.0)
        sae.W_enc[member, idx] = directions * (level / norms)
    sae.b_enc[member, idx] = 0.0
    if optimizer is not None:
        for param, select in ((sae.W_dec, (member, idx)), (sae.b_enc, (member, idx)),
                              *(((sae.W_enc, (member, idx)),) if not sae.tied else ())):
            for key in ("exp_avg", "exp_avg_sq"):
                state = optimizer.state.get(param, {})
                if key in state:
                    state[key][select] = 0.0
    return len(idx)


class DeadFeatureResampler(L.Callback):
    def __init__(self, run: RunDir, every_epochs: int, pool: str, pool_size: int, data_seed: int,
                 stop_after_epoch: int | None = None) -> None:
        self.run = run
        self.every_epochs, self.pool, self.pool_size = int(every_epochs), pool, int(pool_size)
        self.data_seed = int(data_seed)
        self.stop_after_epoch = stop_after_epoch
        self.events: list[dict] = run.read_resampling() if run.resampling_csv.is_file() else []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        due = self.pool != "none" and epoch % self.every_epochs == 0 and epoch < (trainer.max_epochs or 0)
        stopped = self.stop_after_epoch is not None and epoch > self.stop_after_epoch
        if not due or stopped or not epoch_completed(trainer):
            return
        sae: MemberSAE = pl_module.sae
        data = trainer.datamodule.train_data
        dead = dead_features(sae, data)
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        logged = {}
        for member, seed in enumerate(sae.member_seeds):
            indices, gen = candidate_pool(len(data), self.pool_size, self.pool, self.data_seed, seed, epoch)
            n = resample_member(sae, optimizer, member, dead[member], data[indices.to(data.device)], gen)
            self.events.append({"epoch": epoch, "step": trainer.global_step, "seed": seed, "pool": self.pool,
                                "n_resampled": n, "n_features": sae.d_sae})
            logged[f"resample/seed{seed}/n_resampled"] = n
        sae.after_step()
        write_csv(self.run.resampling_csv, self.events)
        for logger in trainer.loggers:
            logger.log_metrics(logged, step=trainer.global_step)
