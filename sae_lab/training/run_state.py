"""What a run dir already holds, checked before a run writes anything: another experiment (refused),
the same one unfinished (resumed), or the same one finished (its final metrics, nothing retrained)."""

from __future__ import annotations

import dataclasses
import math

from omegaconf import DictConfig, OmegaConf

from sae_lab.artifacts import RunDir
from sae_lab.config.experiment_keys import experiment_of
from sae_lab.config.schema import member_seeds
from sae_lab.errors import ConfigError


class RunInterrupted(Exception):
    """Ctrl-C (SIGINT) stopped training; the run resumes from its last checkpoint when started again."""

    def __init__(self, run: RunDir, epoch: int) -> None:
        self.run, self.epoch = run, epoch
        ckpt = run.last_checkpoint
        where = f"its last checkpoint is {ckpt}" if ckpt.is_file() else "no checkpoint was written yet"
        super().__init__(f"Interrupted in epoch {epoch}; {where}.")


# A resumed run may change its budget (train a finished run for longer); nothing else.
EXTENDABLE = ("budget.",)


def check_same_experiment(run: RunDir, cfg: DictConfig) -> None:
    """Raise ConfigError when `run` already holds a run whose experiment keys differ from `cfg`'s:
    resuming it would mix two experiments in one metrics.csv."""
    if not run.config.is_file():
        return
    try:
        old = experiment_of(OmegaConf.load(run.config))
    except Exception:  # noqa: BLE001 - any unreadable config counts the same
        raise ConfigError(f"{run.config} is unreadable, so this run cannot tell whether resuming {run.root} "
                          "is safe; choose a new run dir.") from None
    new = experiment_of(cfg)
    # A key added to an architecture or a subject after the run was written is absent from its config;
    # at its default it cannot have changed what the run computes.
    new_defaults = {**_sae_defaults(str(new.get("sae.architecture", ""))),
                    **_subject_defaults(str(new.get("model._target_", "")))}
    diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k) and not k.startswith(EXTENDABLE)
                  and not (k not in old and k in new_defaults and new.get(k) == new_defaults[k]))
    if diff:
        was = ", ".join(f"{k}={old.get(k)}" for k in diff[:4])
        now = ", ".join(f"{k}={new.get(k)}" for k in diff[:4])
        raise ConfigError(f"{run.root} already holds a run with {was}, not {now}; resume it with the same "
                          "settings or choose a new run dir (hydra.run.dir=... or hydra.sweep.dir=...).")


def _subject_defaults(target: str) -> dict:
    """{"model.<key>": default} of the subject class's keyword defaults; {} when it cannot be imported."""
    import inspect

    from hydra.utils import get_class

    try:
        params = inspect.signature(get_class(target)).parameters.values()
    except Exception:  # noqa: BLE001 - no defaults known: every absent key then counts as changed
        return {}
    return {f"model.{p.name}": p.default for p in params if p.default is not inspect.Parameter.empty}


def _sae_defaults(architecture: str) -> dict:
    """{"sae.<key>": default} of the named architecture's config dataclass; {} for an unknown one."""
    from sae_lab.sae.configs import config_classes

    config = config_classes().get(architecture)
    if config is None:
        return {}
    return {f"sae.{f.name}": f.default for f in dataclasses.fields(config)
            if f.default is not dataclasses.MISSING}


def finished_rows(run: RunDir, cfg: DictConfig) -> dict[int, dict] | None:
    """The final eval row of each member when the run already finished (metrics at the last epoch
    and an export for every member); None otherwise."""
    seeds = member_seeds(cfg.seed, cfg.ensemble)
    if not run.metrics_csv.is_file() or not all(run.sae_weights(s).is_file() for s in seeds):
        return None
    try:
        table = run.metrics_table()
    except Exception:  # noqa: BLE001 - a damaged table means "not known to be finished": resume decides
        return None
    last = table[table["epoch"] == int(cfg.budget.epochs)]
    if not set(seeds) <= set(last["seed"].tolist()):
        return None
    return {int(r["seed"]): {k: v for k, v in r.items() if not (isinstance(v, float) and math.isnan(v))}
            for r in last.to_dict("records") if int(r["seed"]) in seeds}


def format_final(last: dict[int, dict]) -> str:
    cols = ["epoch", "mse_mean", "fvu", "r2", "cos_sim", "rel_error_norm", "l0", "alive_frac", "ce_loss_score"]
    lines = ["seed  " + "  ".join(f"{c:>14}" for c in cols)]
    for seed, row in sorted(last.items()):
        lines.append(f"{seed:<4}  " + "  ".join(f"{float(row.get(c, 'nan')):>14.5g}" for c in cols))
    return "\n".join(lines)
