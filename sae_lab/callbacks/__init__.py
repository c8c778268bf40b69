"""Thin Lightning callbacks that call metrics/ and write artifacts through artifacts.py."""

from sae_lab.callbacks.agreement import CrossSeedAgreement
from sae_lab.callbacks.checkpoint import LastCheckpoint
from sae_lab.callbacks.evaluation import EvalCallback
from sae_lab.callbacks.resampling import DeadFeatureResampler
from sae_lab.evaluation import evaluate_members  # re-exported for existing callers
from sae_lab.resampling import candidate_pool

__all__ = ["CrossSeedAgreement", "DeadFeatureResampler", "EvalCallback", "LastCheckpoint", "candidate_pool",
           "evaluate_members"]
