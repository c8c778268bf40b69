"""Thin Lightning callbacks that call metrics/ and write artifacts through artifacts.py."""

from sae_lab.callbacks.agreement import CrossSeedAgreement
from sae_lab.callbacks.checkpoint import LastCheckpoint
from sae_lab.callbacks.evaluation import EvalCallback, evaluate_members
from sae_lab.callbacks.resampling import DeadFeatureResampler, candidate_pool

__all__ = ["CrossSeedAgreement", "DeadFeatureResampler", "EvalCallback", "LastCheckpoint", "candidate_pool",
           "evaluate_members"]
