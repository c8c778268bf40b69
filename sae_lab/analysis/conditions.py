"""Group runs into conditions: runs are siblings when their configs differ only in seed and in keys
that do not change the experiment (sae_lab.config.experiment_keys.EXECUTION_KEYS)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from sae_lab.analysis.runs import RunRecord
from sae_lab.artifacts import RunDir
from sae_lab.config.experiment_keys import condition_of, flat_keys


@dataclass
class Condition:
    name: str
    config: dict
    members: dict[int, RunDir] = field(default_factory=dict)  # seed -> run that holds it
    epochs: dict[int, list[int]] = field(default_factory=dict)  # seed -> its readable snapshot epochs
    # metrics.csv rows of the kept members, seed by seed in `members` order (fixes the order of averaging)
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    duplicates: list[str] = field(default_factory=list)
    resampling_epochs: set[int] = field(default_factory=set)  # dead-feature resampling events


def group_conditions(records: list[RunRecord]) -> list[Condition]:
    groups: dict[str, Condition] = {}
    parts: dict[str, list[pd.DataFrame]] = {}
    for record in records:
        if not record.usable or record.config is None:
            continue
        cond = condition_of(record.config)
        key = json.dumps(cond, sort_keys=True, default=str)
        group = groups.setdefault(key, Condition(name="", config=cond))
        for seed in record.seeds:
            if seed in group.members:
                group.duplicates.append(f"seed {seed} in {record.run.root} (kept {group.members[seed].root})")
                continue
            group.members[seed] = record.run
            group.epochs[seed] = record.epochs.get(seed, [])
            rows = record.metrics[record.metrics["seed"] == seed]
            if not rows.empty:
                parts.setdefault(key, []).append(rows)
        events = record.resampling
        if not events.empty:
            group.resampling_epochs |= set(events.loc[events["n_resampled"] > 0, "epoch"].tolist())
    for key, group in groups.items():
        if parts.get(key):
            group.metrics = pd.concat(parts[key], ignore_index=True)
    conditions = list(groups.values())
    flat = [flat_keys(c.config) for c in conditions]
    keys = _naming_keys(flat)
    for c, f in zip(conditions, flat, strict=True):
        c.name = ", ".join(f"{_ALIASES.get(k, k)}={f.get(k)}" for k in keys) or "all runs"
    return sorted(conditions, key=lambda c: c.name)


def _naming_keys(flat: list[dict]) -> list[str]:
    """The fewest differing keys (architecture and resampling pool first) that tell conditions apart,
    so names read `sae=relu`, not every architecture-specific default."""
    def signature(keys: list[str]) -> list[str]:
        return [json.dumps([f.get(k) for k in keys], default=str) for f in flat]

    differing = sorted({k for f in flat for k in f if len({json.dumps(g.get(k), default=str) for g in flat}) > 1},
                       key=lambda k: (k not in _FIRST, _FIRST.index(k) if k in _FIRST else 0, k))
    chosen: list[str] = []
    for key in differing:
        if len(set(signature(chosen))) == len(flat):
            break
        if len(set(signature(chosen + [key]))) > len(set(signature(chosen))):
            chosen.append(key)
    return chosen


# The subject before its layer: conditions on two subjects read `model=synthetic`, not `layer=0`.
_FIRST = ["sae.architecture", "resample.pool", "d_sae", "k", "model.name", "layer", "budget.name"]
# Config keys a user sets through a config group (`sae=relu` picks sae.architecture): the name reads
# like the override that chose it.
_ALIASES = {"sae.architecture": "sae", "budget.name": "budget", "model.name": "model"}
