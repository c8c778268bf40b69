"""The DataModule: cached activations in memory, seeded resumable batches, and the eval set."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from sae_lab.data.batches import ShuffledBatches


class ActivationDataModule(L.LightningDataModule):
    """Train batches from `train`, metrics on `eval` (for mod113 both are the full input table)."""

    def __init__(self, train: torch.Tensor, eval: torch.Tensor, batch_size: int, data_seed: int,
                 device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.train_data = train.to(device)
        self.eval_data = eval.to(device)
        self.batches = ShuffledBatches(self.train_data, batch_size, data_seed)

    def train_dataloader(self) -> ShuffledBatches:
        if self.trainer is not None:
            self.batches.epoch_of = lambda: self.trainer.current_epoch
        return self.batches

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        self.batches.mark_consumed()
        return batch
