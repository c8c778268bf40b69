"""checkpoints/last.ckpt after every epoch, written atomically (a crash never leaves half a file)."""

from __future__ import annotations

import lightning as L

from sae_lab.artifacts import RunDir, atomic_write


def epoch_completed(trainer: L.Trainer) -> bool:
    """False when the epoch ended early (trainer.should_stop mid-epoch): Lightning would restore a
    checkpoint taken now as a finished epoch, and an eval now would carry the wrong epoch label."""
    done = trainer.fit_loop.epoch_loop.batch_progress.current.completed
    return done >= trainer.num_training_batches


class LastCheckpoint(L.Callback):
    def __init__(self, run: RunDir, every_n_epochs: int = 1) -> None:
        self.run = run
        self.every_n_epochs = max(1, int(every_n_epochs))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not epoch_completed(trainer):
            return
        last_epoch = trainer.current_epoch + 1 >= (trainer.max_epochs or 0)
        if (trainer.current_epoch + 1) % self.every_n_epochs and not last_epoch:
            return
        # Single process (train.py uses devices=1); under DDP non-zero ranks would rename an empty temp.
        atomic_write(self.run.last_checkpoint, trainer.save_checkpoint)
