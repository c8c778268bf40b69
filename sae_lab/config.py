"""Structured-config schemas (registered in Hydra's ConfigStore) and validation.

Validation turns every bad value into one sentence naming the key and what is allowed
(`ConfigError`), before any expensive work starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
CONFIG_GROUPS = ("model", "sae", "budget", "logger", "experiment")


class ConfigError(ValueError):
    """A bad config value; its message is one sentence naming the key and what is allowed."""


@dataclass
class ModelConfig:
    name: str = "mod113"
    n_layers: int = 2
    d_model: int = 128
    hook_site: str = "resid_post"


@dataclass
class SAEConfig:
    architecture: str = "topk"
    tied: bool = False                      # decoder = encoderᵀ (one shared parameter)
    l1_coefficient: float | None = None     # relu
    l0_coefficient: float | None = None     # jumprelu
    bandwidth: float | None = None          # jumprelu straight-through kernel width
    threshold_init: float | None = None     # jumprelu
    group_sizes: list[int] | None = None    # matryoshka nested prefixes (sum = d_sae)
    aux_k: int | None = None                # topk: AuxK dead-latent loss with this many latents (null = off)
    aux_coefficient: float | None = None    # topk: AuxK weight (default 1/32)
    dead_steps: int | None = None           # topk: steps without firing before a latent counts as dead


def sae_options(sae: SAEConfig | DictConfig) -> dict:
    """The architecture's own keys that are set (everything in the sae group but `architecture`)."""
    plain = OmegaConf.to_container(sae, resolve=True) if isinstance(sae, DictConfig) else vars(sae)
    return {k: v for k, v in plain.items() if k != "architecture" and v is not None}


@dataclass
class BudgetConfig:
    name: str = "short"
    epochs: int = 30
    eval_schedule: str = "every"  # "every": each epoch; "log": n_evals log-spaced epochs
    n_evals: int = 30
    checkpoint_every: int = 1


@dataclass
class LoggerConfig:
    name: str = "csv"
    project: str = "sae_lab"
    entity: str | None = None
    offline: bool = False


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


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    sae: SAEConfig = field(default_factory=SAEConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    resample: ResampleConfig = field(default_factory=ResampleConfig)
    layer: int = 1
    d_sae: int = 1024
    k: int = 32
    seed: int = 0
    data_seed: int = 0
    ensemble: int = 1
    lr: float = 3e-4
    batch_size: int = 256
    device: str = "cpu"
    cache_dir: str = "outputs/cache"
    progress: bool = True
    agreement_hungarian: bool = True


def register_configs() -> None:
    # Schemas live under schema/ so that sweeps like sae='glob(*)' see only the real choices.
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    for group, node in (("model", ModelConfig), ("sae", SAEConfig), ("budget", BudgetConfig),
                        ("logger", LoggerConfig)):
        cs.store(group=f"schema/{group}", name=group, node=node)


def group_choices(group: str, conf_dir: Path = CONF_DIR) -> list[str]:
    """The config files available in a group (e.g. sae -> ["topk"])."""
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))


_MISSING = object()
_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def validate(cfg: DictConfig | dict[str, Any]) -> DictConfig:
    """Merge onto the schema (types) and check value ranges; raises ConfigError."""
    schema = OmegaConf.structured(TrainConfig)
    raw = OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg
    raw = OmegaConf.masked_copy(raw, [k for k in raw if k != "hydra"]) if "hydra" in raw else raw
    try:
        merged = OmegaConf.merge(schema, raw)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", "") or ""
        expected = OmegaConf.select(schema, key, default=_MISSING) if key else _MISSING
        if expected is _MISSING or isinstance(expected, DictConfig):
            raise ConfigError(f"{key or 'a key'} is not a setting sae_lab knows; the keys are in "
                              "conf/train.yaml and its groups.") from None
        bad = OmegaConf.select(raw, key, default=None)
        raise ConfigError(f"{key} must be {_TYPE_WORDS.get(type(expected), 'a valid value')}, "
                          f"got {bad!r}.") from None

    def need(ok: bool, sentence: str) -> None:
        if not ok:
            raise ConfigError(sentence)

    need(merged.d_sae >= 1, f"d_sae must be an integer >= 1, got {merged.d_sae}.")
    need(1 <= merged.k <= merged.d_sae, f"k must be between 1 and d_sae={merged.d_sae}, got {merged.k}.")
    need(0 <= merged.layer < merged.model.n_layers,
         f"layer must be between 0 and {merged.model.n_layers - 1} for model {merged.model.name}, "
         f"got {merged.layer}.")
    need(merged.ensemble >= 1, f"ensemble must be an integer >= 1, got {merged.ensemble}.")
    need(merged.batch_size >= 1, f"batch_size must be an integer >= 1, got {merged.batch_size}.")
    need(merged.lr > 0 and math.isfinite(merged.lr), f"lr must be a positive number, got {merged.lr}.")
    need(merged.seed >= 0 and merged.data_seed >= 0,
         f"seed and data_seed must be non-negative integers, got {merged.seed} and {merged.data_seed}.")
    need(merged.budget.epochs >= 1, f"budget.epochs must be >= 1, got {merged.budget.epochs}.")
    need(merged.budget.eval_schedule in ("every", "log"),
         f"budget.eval_schedule must be 'every' or 'log', got {merged.budget.eval_schedule!r}.")
    need(merged.consistency.weight >= 0 and 0 <= merged.consistency.start <= max(merged.consistency.end,
                                                                                 merged.consistency.start),
         "consistency.weight must be >= 0 and 0 <= consistency.start <= consistency.end, got "
         f"{merged.consistency.weight}, {merged.consistency.start}, {merged.consistency.end}.")
    need(merged.resample.every_epochs >= 1, f"resample.every_epochs must be >= 1, got {merged.resample.every_epochs}.")
    need(merged.resample.pool in ("none", "shared", "seed"),
         f"resample.pool must be none, shared or seed, got {merged.resample.pool!r}.")
    need(merged.device == "cpu" or merged.device.startswith(("cuda", "mps")) or merged.device == "auto",
         f"device must be cpu, auto, cuda[:N] or mps, got {merged.device!r}.")
    return merged


def eval_epochs(budget: BudgetConfig | DictConfig) -> list[int]:
    """Epochs after which metrics and snapshots are taken: 0 (the initialisation) and then every
    epoch, or `n_evals` epochs spaced logarithmically up to the last one (always included)."""
    epochs = int(budget.epochs)
    if budget.eval_schedule == "every" or budget.n_evals >= epochs:
        return list(range(0, epochs + 1))
    points = {round(math.exp(i * math.log(epochs) / (budget.n_evals - 1))) for i in range(budget.n_evals)}
    return sorted({0, 1, epochs} | points)


# Keys that say where or how a run executes, not what it is: runs differing only in these (and in
# `seed`) are siblings of one condition.
NON_CONDITION_KEYS = ("seed", "progress", "device", "cache_dir")


def condition_of(cfg: DictConfig | dict) -> dict:
    """The resolved config minus seed and execution-only keys: equal dicts mean sibling runs."""
    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    return {k: v for k, v in plain.items() if k not in NON_CONDITION_KEYS and k != "hydra"}


def member_seeds(seed: int, ensemble: int) -> list[int]:
    """`ensemble=E` trains seeds seed, seed+1, ..., seed+E-1."""
    return [int(seed) + i for i in range(int(ensemble))]


# Registered at import: conf/sae/*.yaml extend schema/sae, and tests or notebooks compose configs
# without going through main().
register_configs()
