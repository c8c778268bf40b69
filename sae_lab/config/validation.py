"""Validation: every bad value becomes one sentence naming the key and what is allowed (`ConfigError`),
before any expensive work starts."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from sae_lab.config.schema import _DEFAULT_LOGGER, _DEFAULT_MODEL, TrainConfig
from sae_lab.errors import ConfigError

_MISSING = object()
TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


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
        raise ConfigError(f"{key} must be {TYPE_WORDS.get(type(expected), 'a valid value')}, "
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
    # Last: building the subject imports its libraries (torch), so every value above is judged without them.
    subject = build_subject(merged.model)  # the subject reports its shape; constructors are cheap
    n_layers = subject.n_layers
    from sae_lab.config.subject_keys import resolve_subject_keys
    resolve_subject_keys(merged, subject)  # d_sae_over_d_model and depth: keys that need the subject's shape
    if merged.layer is None:
        merged.layer = int(getattr(subject, "default_layer", n_layers - 1))
    need(0 <= merged.layer < n_layers,
         f"layer must be between 0 and {n_layers - 1} for model {merged.model.get('name', '?')}, "
         f"got {merged.layer}.")
    from sae_lab.config.devices import device_available
    from sae_lab.integrations.loggers import check_login  # here, so a missing login stops the run before its dir exists

    device_available(merged.device)

    check_login(merged.logger)
    return merged


def _typed_sae(node: DictConfig) -> DictConfig:
    """The sae node as its architecture's typed config (own keys only, defaults filled in)."""
    from sae_lab.sae.configs import sae_config, schema_node

    plain = OmegaConf.to_container(node, resolve=True)
    try:
        name, _ = sae_config({k: v for k, v in plain.items() if k == "architecture"})
        typed = OmegaConf.merge(OmegaConf.structured(schema_node(name)), plain)  # type errors
        _, config = sae_config(OmegaConf.to_container(typed))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return OmegaConf.create({"architecture": name, **dataclasses.asdict(config)})


def _expected(schema: DictConfig, raw: DictConfig, key: str) -> Any:
    """The schema's value at a dotted key, for error messages (sae keys: the architecture's own)."""
    if key.startswith("sae."):
        from sae_lab.sae.configs import config_classes

        config = config_classes().get(OmegaConf.select(raw, "sae.architecture", default="topk"))
        if config is not None:
            return getattr(config(), key.removeprefix("sae."), _MISSING)
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
