"""Loggers from the `logger` config group: each conf/logger/<name>.yaml is a `_target_` node that
`instantiate` builds; files go under the run dir's logs/."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from sae_lab.errors import ConfigError

if TYPE_CHECKING:
    from lightning.pytorch.loggers import Logger

    from sae_lab.artifacts import RunDir


def build_loggers(cfg: DictConfig, run: RunDir) -> list[Logger]:
    """The configured logger, writing under the run dir's logs/, with the resolved config as its
    hyperparameters (W&B's run config, TensorBoard's hparams, the CSV logger's hparams.yaml)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    node = cfg.logger
    check_login(node)
    extra = {"save_dir": str(run.logs_dir)}
    if "name" in node and node.name is None and not _names_itself(node):  # null: the run dir's name
        extra["name"] = run.root.name
    if "version" in node and node.version is not None:
        extra["version"] = fresh_version(run.logs_dir / str(node.get("name") or ""), str(node.version))
    try:
        logger = instantiate(node, **extra)
    except InstantiationException as err:
        cause = err.__cause__ if err.__cause__ is not None else err
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise ConfigError(f"logger could not be built from _target_={node.get('_target_')}: {first}"
                          .rstrip(".") + ".") from None
    logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return [logger]


def _names_itself(node: DictConfig) -> bool:
    """The logger class gives a null `name` its own meaning (WandbSeedLogger: condition + seed)."""
    from hydra.utils import get_class

    try:
        return bool(getattr(get_class(str(node.get("_target_"))), "NAMES_ITSELF", False))
    except Exception:  # noqa: BLE001 - an unknown _target_ fails with its sentence in instantiate below
        return False


def finish_loggers(loggers: list[Logger]) -> None:
    """End each logger's run: sweep jobs share one process under Hydra's basic launcher, and a W&B run
    left open would collect the next job's metrics too."""
    for logger in loggers:
        if callable(getattr(logger, "finish", None)):  # WandbSeedLogger: one run per member
            logger.finish()
            continue
        experiment = getattr(logger, "_experiment", None)  # only a run that was started
        if experiment is not None and callable(getattr(experiment, "finish", None)):
            experiment.finish()


def check_login(node: DictConfig) -> None:
    """W&B online without credentials would fail mid-run (or wait on a prompt): say so before training."""
    if "wandb" not in str(node.get("_target_", "")).lower() or node.get("offline") \
            or os.environ.get("WANDB_MODE") in ("offline", "disabled", "dryrun") or os.environ.get("WANDB_API_KEY"):
        return
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    host = os.environ.get("WANDB_BASE_URL", "api.wandb.ai").split("://")[-1].split("/")[0]
    if netrc.is_file() and host in netrc.read_text(errors="ignore"):
        return
    raise ConfigError("logger=wandb found no W&B login: run `wandb login` (or set WANDB_API_KEY), or log "
                      "offline with logger.offline=true.")


def fresh_version(parent: Path, version: str) -> str:
    """`version`, or `resume1`, `resume2`, ... when that log dir already holds files: a resumed run
    logs beside the earlier attempt's files (Lightning's CSVLogger deletes an existing metrics.csv)."""
    def used(v: str) -> bool:
        d = parent / v
        return d.is_dir() and any(p.is_file() for p in d.iterdir())

    if not used(version):
        return version
    n = 1
    while (parent / f"{version}{'/' if version else ''}resume{n}").exists():
        n += 1
    return f"{version}/resume{n}" if version else f"resume{n}"
