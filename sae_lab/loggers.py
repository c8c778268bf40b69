"""Loggers named by the `logger` config group; files go under the run dir's logs/."""

from __future__ import annotations

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from omegaconf import DictConfig

from sae_lab.artifacts import RunDir
from sae_lab.config import ConfigError

LOGGERS = ("csv", "wandb")


def build_loggers(cfg: DictConfig, run: RunDir) -> list[Logger]:
    name = cfg.logger.name
    save_dir = str(run.logs_dir)
    if name == "csv":
        return [CSVLogger(save_dir, name="csv", version="")]
    if name == "wandb":
        return [WandbLogger(project=cfg.logger.project, entity=cfg.logger.entity, save_dir=save_dir,
                            offline=cfg.logger.offline, name=run.root.name)]
    raise ConfigError(f"logger.name={name!r} is not known; allowed: {', '.join(LOGGERS)}.")
