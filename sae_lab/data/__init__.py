"""Activation cache (build, verify, load) and the DataModule."""

from sae_lab.data.batches import ShuffledBatches, epoch_permutation
from sae_lab.data.cache import cached_activations, load_or_build, subject_activations
from sae_lab.data.datamodule import ActivationDataModule
from sae_lab.data.sharded import DEFAULT_MEMORY_BUDGET, ShardedActivations, materialize

__all__ = ["DEFAULT_MEMORY_BUDGET", "ActivationDataModule", "ShardedActivations", "ShuffledBatches",
           "cached_activations", "epoch_permutation", "load_or_build", "materialize", "subject_activations"]
