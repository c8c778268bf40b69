"""`d_sae_over_erank`: size the dictionary from the effective rank of the cached training activations
(Table 4's d_sae/erank grid on any subject). The resolved d_sae replaces the placeholder in the run's
config.yaml, so conditions, resumes and the report see an ordinary d_sae."""

from __future__ import annotations

import math

import torch
from omegaconf import DictConfig, OmegaConf

from sae_lab.artifacts import RunDir
from sae_lab.data import ShardedActivations
from sae_lab.errors import ConfigError
from sae_lab.metrics import effective_rank

# The same slice as metrics.csv's act_effective_rank (EvalCallback): an SVD of a whole LM cache would not fit.
ERANK_VECTORS = 200_000


def scaled_d_sae(ratio: float, erank: float) -> int:
    """round(ratio × erank), at least 1."""
    return max(1, round(ratio * erank))


def activations_erank(train_acts: torch.Tensor | ShardedActivations) -> float:
    return effective_rank(train_acts[:ERANK_VECTORS])


def adopt_recorded_d_sae(run: RunDir, cfg: DictConfig) -> None:
    """A resumed (or finished) run keeps the d_sae it resolved the first time; its config.yaml is only
    written after the resolution, so a recorded d_sae is never the placeholder."""
    if cfg.d_sae_over_erank is None or not run.config.is_file():
        return
    try:
        old = OmegaConf.load(run.config)
    except Exception:  # noqa: BLE001 - check_same_experiment says why an unreadable config stops the run
        return
    if old.get("d_sae_over_erank") == cfg.d_sae_over_erank and isinstance(old.get("d_sae"), int):
        cfg.d_sae = int(old.d_sae)


def resolve_d_sae(cfg: DictConfig, train_acts: torch.Tensor | ShardedActivations) -> float | None:
    """Set cfg.d_sae from d_sae_over_erank (a no-op when unset); returns the erank used, or None."""
    ratio = cfg.d_sae_over_erank
    if ratio is None:
        return None
    erank = activations_erank(train_acts)
    if not math.isfinite(erank):
        raise ConfigError(f"d_sae_over_erank={ratio} needs the training activations' effective rank, "
                          f"which is {erank} (constant or non-finite activations).")
    cfg.d_sae = scaled_d_sae(ratio, erank)
    if cfg.k > cfg.d_sae:
        raise ConfigError(f"k={cfg.k} exceeds d_sae={cfg.d_sae}, which d_sae_over_erank={ratio} gives for the "
                          f"activations' effective rank {erank:.1f}; set k to at most {cfg.d_sae}.")
    return erank
