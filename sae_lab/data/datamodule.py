"""The DataModule: cached activations (in memory when they fit, else memory-mapped), seeded resumable
batches, and the eval set."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from sae_lab.data.batches import ShuffledBatches
from sae_lab.data.sharded import DEFAULT_MEMORY_BUDGET, ShardedActivations, materialize


class ActivationDataModule(L.LightningDataModule):
    """Train batches from `train`, metrics on `eval` (for mod113 both are the full input table).

    Each of `train` / `eval` is a tensor (moved to `device`) or a `ShardedActivations`, loaded into
    memory on `device` when its float32 size fits `memory_budget` bytes (None: always), else kept
    memory-mapped with indexing results on `device`. Batches are identical either way.
    """

    def __init__(self, train: torch.Tensor | ShardedActivations, eval: torch.Tensor | ShardedActivations,
                 batch_size: int, data_seed: int, device: str | torch.device = "cpu",
                 memory_budget: int | None = DEFAULT_MEMORY_BUDGET) -> None:
        super().__init__()
        self.train_data = materialize(train, device, memory_budget)
        self.eval_data = self.train_data if eval is train else materialize(eval, device, memory_budget)
        self.batches = ShuffledBatches(self.train_data, batch_size, data_seed)

    def train_dataloader(self) -> ShuffledBatches:
        if self.trainer is not None:
            self.batches.epoch_of = lambda: self.trainer.current_epoch
        return self.batches

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        self.batches.mark_consumed()
        return batch
