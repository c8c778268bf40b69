"""Structured-config schemas (registered in Hydra's ConfigStore) and validation.

Validation turns every bad value into one sentence naming the key and what is allowed
(`ConfigError`), before any expensive work starts.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from sae_lab.experiment_keys import job_dir_excluded_keys, safe_dir_name
from sae_lab.help_text import help_text
from sae_lab.shipped import shipped_path

CONF_DIR = Path(__file__).resolve().parent / "conf"  # shipped inside the package; conf/ at the root links here
CONFIG_GROUPS = ("model", "sae", "budget", "logger", "experiment")


class ConfigError(ValueError):
    """A bad config value; its message is one sentence naming the key and what is allowed."""


@dataclass
class BudgetConfig:
    name: str = "short"
    epochs: int = 30
    eval_schedule: str = "every"  # "every": each epoch; "log": n_evals log-spaced epochs
    n_evals: int = 30
    eval_every: int | None = None  # also evaluate every this many epochs (Figure 1: log-spaced plus every 100)
    checkpoint_every: int = 1


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
    logger: Any = None  # null: the CSV logger
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    resample: ResampleConfig = field(default_factory=ResampleConfig)
    behaviour: BehaviourConfig = field(default_factory=BehaviourConfig)
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
    device: str = "cpu"
    cache_dir: str = "outputs/cache"
    cache_dtype: str = "float32"        # activation storage: float32 or bfloat16 (half the disk, batches in float32)
    memory_budget_gb: float = 2.0       # caches larger than this stay memory-mapped instead of loaded into RAM
    progress: bool = True
    agreement_hungarian: bool = True


def register_configs() -> None:
    """Schemas for Hydra: budget, and one node per registered architecture (conf/sae/<name>.yaml
    extends schema/sae/<name>). They live under schema/ so that sweeps like sae='glob(*)' see
    only the real choices."""
    from sae_lab.sae.registry import REGISTRY, schema_node

    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(group="schema/budget", name="budget", node=BudgetConfig)
    for name in REGISTRY:
        cs.store(group="schema/sae", name=name, node=schema_node(name))


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
    # Plain containers: the typed schema below decides types, not the node types Hydra composed.
    raw = OmegaConf.create(OmegaConf.to_container(raw, resolve=False))
    try:
        merged = OmegaConf.merge(schema, raw)
        merged.sae = _typed_sae(merged.sae)
        merged.model = merged.model if merged.model is not None else dict(_DEFAULT_MODEL)
        merged.logger = merged.logger if merged.logger is not None else dict(_DEFAULT_LOGGER)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", "") or ""
        expected = _expected(schema, raw, key)
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
    ratio = merged.d_sae_over_erank  # k is checked against the d_sae it gives once the cache exists
    need(ratio is None or (ratio > 0 and math.isfinite(ratio)),
         f"d_sae_over_erank must be null or a positive number, got {ratio}.")
    sized = ratio is not None or merged.d_sae_over_d_model is not None  # d_sae is not known yet
    need(1 <= merged.k <= (math.inf if sized else merged.d_sae),
         f"k must be between 1 and d_sae={merged.d_sae}, got {merged.k}.")
    subject = build_subject(merged.model)  # the subject reports its shape; constructors are cheap
    n_layers = subject.n_layers
    from sae_lab.subject_keys import resolve_subject_keys
    resolve_subject_keys(merged, subject)  # d_sae_over_d_model and depth: keys that need the subject's shape
    if merged.layer is None:
        merged.layer = int(getattr(subject, "default_layer", n_layers - 1))
    need(0 <= merged.layer < n_layers,
         f"layer must be between 0 and {n_layers - 1} for model {merged.model.get('name', '?')}, "
         f"got {merged.layer}.")
    need(merged.ensemble >= 1, f"ensemble must be an integer >= 1, got {merged.ensemble}.")
    need(merged.batch_size >= 1, f"batch_size must be an integer >= 1, got {merged.batch_size}.")
    need(merged.lr > 0 and math.isfinite(merged.lr), f"lr must be a positive number, got {merged.lr}.")
    need(merged.seed >= 0 and merged.data_seed >= 0,
         f"seed and data_seed must be non-negative integers, got {merged.seed} and {merged.data_seed}.")
    need(merged.cache_dtype in ("float32", "bfloat16"),
         f"cache_dtype must be float32 or bfloat16, got {merged.cache_dtype!r}.")
    need(merged.memory_budget_gb > 0, f"memory_budget_gb must be a positive number, got {merged.memory_budget_gb}.")
    need(merged.budget.epochs >= 1, f"budget.epochs must be >= 1, got {merged.budget.epochs}.")
    need(merged.budget.eval_every is None or merged.budget.eval_every >= 1,
         f"budget.eval_every must be null or an integer >= 1, got {merged.budget.eval_every}.")
    need(merged.budget.eval_schedule in ("every", "log"),
         f"budget.eval_schedule must be 'every' or 'log', got {merged.budget.eval_schedule!r}.")
    need(merged.consistency.weight >= 0 and 0 <= merged.consistency.start <= max(merged.consistency.end,
                                                                                 merged.consistency.start),
         "consistency.weight must be >= 0 and 0 <= consistency.start <= consistency.end, got "
         f"{merged.consistency.weight}, {merged.consistency.start}, {merged.consistency.end}.")
    need(merged.resample.every_epochs >= 1, f"resample.every_epochs must be >= 1, got {merged.resample.every_epochs}.")
    need(merged.resample.pool in ("none", "shared", "seed"),
         f"resample.pool must be none, shared or seed, got {merged.resample.pool!r}.")
    need(re.fullmatch(r"cpu|auto|mps|cuda(:\d+)?", merged.device) is not None,
         f"device must be cpu, auto, cuda, cuda:N or mps, got {merged.device!r}.")
    from sae_lab.devices import device_available
    from sae_lab.loggers import check_login  # here, so a missing login stops the run before its dir exists

    device_available(merged.device)

    check_login(merged.logger)
    return merged


def _typed_sae(node: DictConfig) -> DictConfig:
    """The sae node as its architecture's typed config (own keys only, defaults filled in)."""
    from sae_lab.sae.registry import architecture_config, schema_node

    plain = OmegaConf.to_container(node, resolve=True)
    try:
        cls, _ = architecture_config({k: v for k, v in plain.items() if k == "architecture"})
    except ValueError as err:
        raise ConfigError(str(err)) from None
    typed = OmegaConf.merge(OmegaConf.structured(schema_node(cls.architecture)), plain)  # type errors
    try:
        _, sae_cfg = architecture_config(OmegaConf.to_container(typed))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return OmegaConf.create({"architecture": cls.architecture, **dataclasses.asdict(sae_cfg)})


def _expected(schema: DictConfig, raw: DictConfig, key: str) -> Any:
    """The schema's value at a dotted key, for error messages (sae keys: the architecture's own)."""
    if key.startswith("sae."):
        from sae_lab.sae.registry import REGISTRY

        arch = OmegaConf.select(raw, "sae.architecture", default="topk")
        cls = REGISTRY.get(arch)
        if cls is not None:
            return getattr(cls.config_class(), key.removeprefix("sae."), _MISSING)
    return OmegaConf.select(schema, key, default=_MISSING) if key else _MISSING


def build_subject(model: DictConfig | dict, device: str = "cpu") -> Any:
    """Instantiate the subject model from its `_target_` node; one sentence on failure."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    target = model.get("_target_") if hasattr(model, "get") else None
    if not target:
        raise ConfigError("model needs a _target_ naming the subject class; see conf/model/*.yaml.")
    try:
        return instantiate(model, device=device)
    except MissingMandatoryValue as err:
        raise ConfigError(f"model.{err.full_key.split('.')[-1]} must be set for this model (e.g. "
                          "model.name=<HF name or local dir>).") from None
    except InstantiationException as err:
        cause = err.__cause__ if err.__cause__ is not None else err
        if isinstance(cause, ValueError | FileNotFoundError):  # the subject's own one-sentence errors
            raise ConfigError(str(cause)) from None
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise ConfigError(f"model could not be built from _target_={target}: {first}".rstrip(".") + ".") \
            from None


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


# Registered at import: conf/sae/*.yaml extend schema/sae, and tests or notebooks compose configs
# without going through main().
register_configs()
# One suffix per process, so that concurrent starts never share a run or sweep dir name.
RUN_ID = f"{os.getpid() % 100000:05d}{secrets.token_hex(2)}"
if not OmegaConf.has_resolver("sae_lab_execution_keys"):
    OmegaConf.register_new_resolver("sae_lab_execution_keys", job_dir_excluded_keys)
    OmegaConf.register_new_resolver("sae_lab_safe_name", safe_dir_name)
    OmegaConf.register_new_resolver("sae_lab_run_id", lambda: RUN_ID, use_cache=True)
    OmegaConf.register_new_resolver("sae_lab_help", lambda: help_text(CONF_DIR))
    OmegaConf.register_new_resolver("shipped", shipped_path)  # ${shipped:models/weights/x}: a packaged file
