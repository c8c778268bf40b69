"""Loggers from the `logger` config group: each conf/logger/<name>.yaml is a `_target_` node that
`instantiate` builds; files go under the run dir's logs/."""

from __future__ import annotations

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

from sae_lab.artifacts import RunDir
from sae_lab.config import ConfigError


def build_loggers(cfg: DictConfig, run: RunDir) -> list[Logger]:
    node = cfg.logger
    extra = {"save_dir": str(run.logs_dir)}
    if "name" in node and node.name is None:  # a null run name means the run dir's name
        extra["name"] = run.root.name
    try:
        return [instantiate(node, **extra)]
    except InstantiationException as err:
        cause = err.__cause__ if err.__cause__ is not None else err
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise ConfigError(f"logger could not be built from _target_={node.get('_target_')}: {first}"
                          .rstrip(".") + ".") from None
