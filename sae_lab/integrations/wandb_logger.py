"""logger=wandb: one W&B run per seed, grouped by sweep.

A W&B dashboard compares runs: a grouped line plot averages one metric key over the runs of a group,
and the runs table filters and groups by config values. So every seed is its own run, whether it trained
in its own job (`-m seed=1..20`) or as a member of an ensemble (`ensemble=20`): the dashboard of a
sweep looks the same either way, and a seed-free key (`eval/mse_mean`, not `eval/seed3/mse_mean`) lines
up across runs. The callbacks log `eval/seed{S}/<metric>` (as the CSV and TensorBoard loggers keep
it); this logger sends each such key to seed S's run without the `seed{S}/` part, and a key without a
seed (`train/loss`, `epoch`) to every member's run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from sae_lab.config.experiment_keys import condition_label

_SEEDED = re.compile(r"^(?P<head>(?:[^/]+/)*?)seed(?P<seed>\d+)/(?P<rest>.+)$")
STEP_KEY = "trainer/global_step"  # the x axis, as Lightning's WandbLogger names it
TAG_LIMIT = 64  # W&B rejects longer tags


def run_context() -> tuple[str, str | None]:
    """(the job's override dirname, the sweep dir's name) from Hydra; ("", None) outside a Hydra job or
    in a single run, whose runs stay ungrouped."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return "", None
    hydra_cfg = HydraConfig.get()
    sweep = Path(str(hydra_cfg.sweep.dir)).resolve().name if str(hydra_cfg.mode).endswith("MULTIRUN") else None
    return str(hydra_cfg.job.override_dirname or ""), sweep


def auto_tags(config: Mapping[str, Any], extra: Sequence[str] = ()) -> list[str]:
    """Architecture, subject model (a path's last part) and budget, then the user's tags, each cut to
    W&B's limit."""
    model = str((config.get("model") or {}).get("name") or "").rstrip("/").split("/")[-1]
    found = [(config.get("sae") or {}).get("architecture"), model, (config.get("budget") or {}).get("name"),
             *extra]
    return list(dict.fromkeys(str(t)[:TAG_LIMIT] for t in found if t))


def wandb_mode(offline: bool) -> str | None:
    """`offline` forces offline mode; otherwise wandb reads WANDB_MODE itself (offline, disabled)."""
    return "offline" if offline else None


class WandbSeedLogger(Logger):
    """A Lightning logger holding one W&B run per ensemble member. The runs start at the first
    `log_hyperparams`, which sae_lab.integrations.loggers.build_loggers calls with the resolved config; each run's
    config is that config with `seed` set to its member's seed."""

    NAMES_ITSELF = True  # build_loggers leaves a null `name` to this class (condition + seed)

    def __init__(self, project: str = "sae_lab", entity: str | None = None, offline: bool = False,
                 name: str | None = None, group: str | None = None, tags: Sequence[str] = (),
                 job_type: str = "train", notes: str | None = None, save_dir: str = ".") -> None:
        super().__init__()
        self.project, self.entity, self.offline = project, entity, bool(offline)
        self.base_name, self.group, self.user_tags = name, group, list(tags or [])
        self.job_type, self.notes, self._save_dir = job_type, notes, str(save_dir)
        self.runs: dict[int, Any] = {}  # seed -> wandb Run
        self.status = "success"

    @property
    def name(self) -> str:
        return "wandb"

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return self._save_dir

    @property
    @rank_zero_experiment
    def experiment(self) -> dict[int, Any]:
        """The W&B runs by seed (empty until the config is logged)."""
        return self.runs

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        params = dict(vars(params)) if not isinstance(params, Mapping) else dict(params)
        if not self.runs:
            self._start(params)
            return
        for run in self.runs.values():  # a later call (e.g. a module's hparams) adds to every run
            run.config.update(params, allow_val_change=True)

    def _start(self, config: dict) -> None:
        import wandb

        seed, ensemble = int(config.get("seed", 0)), int(config.get("ensemble", 1) or 1)
        overrides, sweep = run_context()
        label = self.base_name or condition_label(overrides, str((config.get("sae") or {}).get("architecture", "")))
        Path(self._save_dir).mkdir(parents=True, exist_ok=True)
        for member, member_seed in enumerate(range(seed, seed + ensemble)):
            run = wandb.init(
                project=self.project, entity=self.entity, dir=self._save_dir, mode=wandb_mode(self.offline),
                name=f"{label} seed={member_seed}", group=self.group or sweep, job_type=self.job_type,
                tags=auto_tags(config, self.user_tags), notes=self.notes,
                config={**config, "seed": member_seed, "member": member},
                # several runs live in one process: the members of an ensemble, the jobs of a sweep
                reinit="create_new")
            run.define_metric(STEP_KEY)
            run.define_metric("*", step_metric=STEP_KEY, step_sync=True)
            self.runs[member_seed] = run

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        per_run: dict[int, dict[str, Any]] = {s: {} for s in self.runs}
        for key, value in metrics.items():
            match = _SEEDED.match(key)
            if match and int(match["seed"]) in per_run:
                per_run[int(match["seed"])][match["head"] + match["rest"]] = value
            else:
                for row in per_run.values():
                    row[key] = value
        for seed, row in per_run.items():
            if row:
                self.runs[seed].log({**row, **({STEP_KEY: step} if step is not None else {})})

    @rank_zero_only
    def finalize(self, status: str) -> None:
        # Lightning calls this at the end of fit; the runs stay open until finish() (sae_lab.integrations.loggers),
        # which marks them failed when fit did not succeed.
        if status == "failed":
            self.status = status

    def finish(self) -> None:
        for run in self.runs.values():
            run.finish(exit_code=0 if self.status != "failed" else 1)
        self.runs.clear()
