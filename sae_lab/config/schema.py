"""The structured-config schema: one dataclass per config node, with the defaults every key falls back
to (conf/*.yaml sets the same values; tests/test_schema_defaults.py checks they agree), and the eval
cadence that follows from a budget."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"  # shipped inside the package; conf/ at the root links here


def _config_groups() -> tuple[str, ...]:
    """The config groups, in the order of conf/train.yaml's defaults list (the one place they are named)."""
    defaults = OmegaConf.load(CONF_DIR / "train.yaml").defaults
    return tuple(str(key) for item in defaults if OmegaConf.is_dict(item) for key in item)


CONFIG_GROUPS = _config_groups()
# Field metadata marking keys that say where or how a run executes, not what it is (experiment_keys.py).
EXECUTION = {"execution": True}


@dataclass
class BudgetConfig:
    """The defaults are conf/budget/short.yaml's (the default budget)."""
    name: str = "short"
    epochs: int = 30
    eval_schedule: str = "log"  # "every": each epoch; "log": n_evals log-spaced epochs
    n_evals: int = 12
    eval_every: int | None = None  # also evaluate every this many epochs (Figure 1: log-spaced plus every 100)
    checkpoint_every: int = field(default=5, metadata=EXECUTION)


@dataclass
class TrainerConfig:
    """Lightning Trainer and step settings."""
    accelerator: str | None = None   # null: follow `device` (gpu for cuda*, else cpu)
    precision: str = "32-true"
    deterministic: bool = False
    log_every_n_steps: int = 50      # Lightning's logger flush cadence
    loss_log_every: int = 10         # train/loss is logged every this many steps (self.log costs ~0.5 ms)
    nan_check_every: int = 25        # steps between finite-loss checks (a check syncs a GPU)


@dataclass
class ConsistencyConfig:
    """Latent self-consistency regulariser: weight λ, 0 until step `start`, linear ramp to λ at `end`."""
    weight: float = 0.0
    start: int = 0
    end: int = 0


@dataclass
class ResampleConfig:
    """Dead-feature resampling every `every_epochs` epochs from a candidate pool of `pool_size`
    training inputs drawn with data_seed (`shared`) or the member's seed (`seed`); `none` = off."""
    pool: str = "none"
    every_epochs: int = 5
    pool_size: int = 4096
    stop_after_epoch: int | None = None


_DEFAULT_MODEL = {"_target_": "sae_lab.models.mod113.Mod113", "name": "mod113"}
_DEFAULT_LOGGER = {"_target_": "lightning.pytorch.loggers.CSVLogger", "name": "csv", "version": ""}


@dataclass
class BehaviourConfig:
    """Patched CE on the held-out sequences at eval epochs (docs/metrics.md, "Behaviour")."""
    enabled: bool = True
    every_evals: int = 1        # at every eval epoch (2: every other one, ...); the last epoch always
    batch_size: int | None = None  # sequences per subject forward (null: ~256 MB of log-probs)
    n_resamples: int = 1000     # bootstrap resamples for the 95% CIs
    max_sequences: int | None = None  # use only the first N held-out sequences (null: all)


@dataclass
class TrainConfig:
    # model and logger are `_target_` nodes built by hydra.utils.instantiate; sae is the chosen
    # architecture's own config (sae_lab.sae.registry), checked in `validate`.
    model: Any = None   # null: mod113 (filled in by validate; a default dict would merge into other models)
    sae: Any = field(default_factory=lambda: {"architecture": "topk"})
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    logger: Any = field(default=None, metadata=EXECUTION)  # null: the CSV logger
    trainer: TrainerConfig = field(default_factory=TrainerConfig, metadata=EXECUTION)
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    resample: ResampleConfig = field(default_factory=ResampleConfig)
    behaviour: BehaviourConfig = field(default_factory=BehaviourConfig, metadata=EXECUTION)
    layer: int | None = None  # null: the subject's default_layer
    d_sae: int = 1024
    d_sae_over_erank: float | None = None  # set: d_sae = round(this × erank of the training activations)
    d_sae_over_d_model: float | None = None  # set: d_sae = round(this × the subject's d_model), in validate
    depth: str | None = None  # a depth regime label (early, mid, late): layer = depth_layers[model.name][depth]
    depth_layers: dict[str, dict[str, int]] = field(default_factory=dict)  # model.name -> {depth: layer}
    k: int = 32
    seed: int = 0
    data_seed: int = 0
    ensemble: int = 1
    lr: float = 3e-4
    batch_size: int = 256
    device: str = field(default="cpu", metadata=EXECUTION)
    cache_dir: str = field(default="outputs/cache", metadata=EXECUTION)
    cache_dtype: str = "float32"        # activation storage: float32 or bfloat16 (half the disk, batches in float32)
    # caches larger than this stay memory-mapped instead of loaded into RAM
    memory_budget_gb: float = field(default=2.0, metadata=EXECUTION)
    progress: bool = field(default=True, metadata=EXECUTION)
    agreement_hungarian: bool = field(default=True, metadata=EXECUTION)


def behaviour_epochs(cfg: DictConfig) -> list[int]:
    """The eval epochs at which patched CE is computed: every `every_evals`-th, and the last."""
    if not cfg.behaviour.enabled:
        return []
    epochs = eval_epochs(cfg.budget)
    return sorted(set(epochs[::max(1, int(cfg.behaviour.every_evals))]) | {epochs[-1]})


def eval_epochs(budget: BudgetConfig | DictConfig) -> list[int]:
    """Epochs after which metrics and snapshots are taken: 0 (the initialisation) and then every
    epoch, or `n_evals` epochs spaced logarithmically up to the last one (always included), plus
    every `eval_every`-th epoch when set."""
    epochs = int(budget.epochs)
    if budget.eval_schedule == "every" or budget.n_evals >= epochs:
        return list(range(0, epochs + 1))
    points = {round(math.exp(i * math.log(epochs) / (budget.n_evals - 1))) for i in range(budget.n_evals)}
    every = getattr(budget, "eval_every", None)  # absent from configs written before it existed
    extra = set(range(0, epochs + 1, int(every))) if every else set()
    return sorted({0, 1, epochs} | points | extra)


def member_seeds(seed: int, ensemble: int) -> list[int]:
    """`ensemble=E` trains seeds seed, seed+1, ..., seed+E-1."""
    return [int(seed) + i for i in range(int(ensemble))]
