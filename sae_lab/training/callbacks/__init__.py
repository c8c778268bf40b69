"""Thin Lightning callbacks that call metrics/ and write artifacts through artifacts.py."""

from sae_lab.training.callbacks.checkpoint import LastCheckpoint
from sae_lab.training.callbacks.cross_seed import CrossSeedAgreement
from sae_lab.training.callbacks.eval_epoch import EvalCallback
from sae_lab.training.callbacks.resampler import DeadFeatureResampler
from sae_lab.training.dead_features import candidate_pool
from sae_lab.training.evaluation import evaluate_members  # re-exported for existing callers

__all__ = ["CrossSeedAgreement", "DeadFeatureResampler", "EvalCallback", "LastCheckpoint", "candidate_pool",
           "evaluate_members"]
