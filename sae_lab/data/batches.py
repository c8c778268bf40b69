"""Seeded, resumable batch order over an activation tensor or a memory-mapped activation cache.

Batches are gathers by a per-epoch permutation from one tensor, or from a `ShardedActivations`
memory map (which returns the very same rows): no per-item collation. The order depends only on
`data_seed` and the epoch, so runs that differ in `seed` see identical batches in identical order,
whether the data is in memory or on disk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from sae_lab.data.sharded import ShardedActivations


def epoch_permutation(n: int, data_seed: int, epoch: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(int(data_seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=gen)


class ShuffledBatches:
    """An iterable of [batch_size, d] slices; Lightning saves and restores its position.

    `consumed` counts batches handed to training (advanced by the DataModule's
    `on_before_batch_transfer`, which runs after Lightning's one-batch prefetch), so a checkpoint
    taken mid-epoch resumes at the right batch. `epoch_of` (the trainer's epoch counter) fixes the
    epoch when Lightning does not restore loader state: it skips that at epoch boundaries.
    """

    def __init__(self, data: torch.Tensor | ShardedActivations, batch_size: int, data_seed: int,
                 epoch_of: Callable[[], int] | None = None) -> None:
        self.data = data
        self.batch_size = int(batch_size)
        self.data_seed = int(data_seed)
        self.epoch = 0
        self.consumed = 0
        self.epoch_of = epoch_of

    def __len__(self) -> int:
        return math.ceil(len(self.data) / self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        # Runs at the first next(), i.e. once the trainer's epoch counter is current.
        if self.epoch_of is not None:
            epoch = int(self.epoch_of())
            if epoch != self.epoch or self.consumed >= len(self):
                self.epoch, self.consumed = epoch, 0
        elif self.consumed >= len(self):  # the previous epoch finished: roll over
            self.epoch, self.consumed = self.epoch + 1, 0
        perm = epoch_permutation(len(self.data), self.data_seed, self.epoch)
        if isinstance(self.data, torch.Tensor):  # a memory map gathers on the CPU: keep its indices there
            perm = perm.to(self.data.device)
        for i in range(self.consumed, len(self)):
            yield self.data[perm[i * self.batch_size:(i + 1) * self.batch_size]]

    def mark_consumed(self) -> None:
        self.consumed += 1

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "consumed": self.consumed, "data_seed": self.data_seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.consumed = int(state["epoch"]), int(state["consumed"])
