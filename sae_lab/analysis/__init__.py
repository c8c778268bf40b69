"""Sweep-level analysis: find runs, group siblings into conditions, pairwise trajectories, report."""

from sae_lab.analysis.build import build_report
from sae_lab.analysis.conditions import Condition, group_conditions
from sae_lab.analysis.runs import NoRunDirsError, RunRecord, load_runs

__all__ = ["Condition", "NoRunDirsError", "RunRecord", "build_report", "group_conditions", "load_runs"]
