"""Thin Lightning callbacks that call metrics/ and write artifacts through artifacts.py."""

from sae_lab.callbacks.agreement import CrossSeedAgreement
from sae_lab.callbacks.checkpoint import LastCheckpoint
from sae_lab.callbacks.evaluation import EvalCallback, evaluate_members

__all__ = ["CrossSeedAgreement", "EvalCallback", "LastCheckpoint", "evaluate_members"]
