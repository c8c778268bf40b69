"""The dead-feature resampling callback: at the end of every `every_epochs`-th epoch, revive dead
features (sae_lab.training.dead_features) and record each event in resampling.csv and the logger."""

from __future__ import annotations

import lightning as L

from sae_lab.artifacts import RunDir, write_csv
from sae_lab.sae.base import MemberSAE
from sae_lab.training.callbacks.checkpoint import epoch_completed
from sae_lab.training.dead_features import candidate_pool, dead_features, resample_member


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
