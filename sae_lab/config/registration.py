"""What Hydra and OmegaConf need before a config is composed: the schemas in the ConfigStore, the group
choices, and sae_lab's resolvers (registered once, at import of sae_lab.config)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from sae_lab.config.experiment_keys import job_dir_excluded_keys, safe_dir_name
from sae_lab.config.help_text import help_text
from sae_lab.config.schema import CONF_DIR, BudgetConfig, TrainConfig
from sae_lab.shipped import shipped_path


def register_configs() -> None:
    """Schemas for Hydra: budget, and one node per registered architecture (conf/sae/<name>.yaml
    extends schema/sae/<name>). They live under schema/ so that sweeps like sae='glob(*)' see
    only the real choices."""
    from sae_lab.sae.configs import config_classes, schema_node

    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(group="schema/budget", name="budget", node=BudgetConfig)
    for name in config_classes():
        cs.store(group="schema/sae", name=name, node=schema_node(name))


def group_choices(group: str, conf_dir: Path = CONF_DIR) -> list[str]:
    """The config files available in a group (e.g. sae -> ["topk"])."""
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))


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
