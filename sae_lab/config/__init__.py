"""Configuration: the schema (schema.py), validation (validation.py), what Hydra needs registered
(registration.py), and the keys resolved against the subject or naming experiments.

`from sae_lab.config import validate, TrainConfig, ...` is the notebook entry point."""

from sae_lab.config.registration import RUN_ID, group_choices, register_configs
from sae_lab.config.schema import (
    CONF_DIR,
    CONFIG_GROUPS,
    BehaviourConfig,
    BudgetConfig,
    ConsistencyConfig,
    ResampleConfig,
    TrainConfig,
    TrainerConfig,
    behaviour_epochs,
    eval_epochs,
    member_seeds,
)
from sae_lab.config.validation import build_subject, validate
from sae_lab.errors import ConfigError

__all__ = ["CONF_DIR", "CONFIG_GROUPS", "RUN_ID", "BehaviourConfig", "BudgetConfig", "ConfigError",
           "ConsistencyConfig", "ResampleConfig", "TrainConfig", "TrainerConfig", "behaviour_epochs", "build_subject",
           "eval_epochs", "group_choices", "member_seeds", "register_configs", "validate"]
