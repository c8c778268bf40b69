"""Activation cache (build, verify, load) and the DataModule."""

from sae_lab.data.batches import ShuffledBatches, epoch_permutation
from sae_lab.data.cache import load_or_build, subject_activations
from sae_lab.data.datamodule import ActivationDataModule

__all__ = ["ActivationDataModule", "ShuffledBatches", "epoch_permutation", "load_or_build",
           "subject_activations"]
