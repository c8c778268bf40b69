"""Which config keys define an experiment: runs whose configs differ only in seed and execution keys
(where or how a run executes) are seeds of one condition, and sweep job dirs are named without them."""

from __future__ import annotations

import dataclasses
import hashlib
import typing

from omegaconf import DictConfig, OmegaConf

from sae_lab.config.schema import TrainConfig


def _execution_keys(cls: type = TrainConfig, prefix: str = "") -> tuple[str, ...]:
    """Keys that say where or how a run executes, not what it is (the schema's fields marked EXECUTION).
    Runs differing only in these (and in `seed`) are siblings of one condition, and sweep job dirs leave
    them out of their names (conf/train.yaml reads this list through the `sae_lab_execution_keys` resolver)."""
    keys: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("execution"):
            keys.append(prefix + f.name)
        elif dataclasses.is_dataclass(hints[f.name]):
            keys += _execution_keys(hints[f.name], f"{prefix}{f.name}.")
    return tuple(keys)


EXECUTION_KEYS = _execution_keys()


def is_execution_key(key: str) -> bool:
    """`key` (dotted, `+`/`~` prefixes ignored) is or lies under one of EXECUTION_KEYS."""
    key = key.lstrip("+~")
    return any(key == k or key.startswith(k + ".") for k in EXECUTION_KEYS)


def job_dir_excluded_keys() -> list[str]:
    return [*EXECUTION_KEYS, "hydra.sweep.dir", "hydra.run.dir"]


def condition_of(cfg: DictConfig | dict) -> dict:
    """The resolved config minus seed and execution-only keys: equal dicts mean sibling runs."""
    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)

    def keep(node: dict, prefix: str) -> dict:
        return {k: keep(v, f"{prefix}{k}.") if isinstance(v, dict) else v for k, v in node.items()
                if not is_execution_key(prefix + str(k)) and prefix + str(k) not in ("seed", "hydra")}

    return keep(plain, "")


def safe_dir_name(override_dirname: str, limit: int = 160) -> str:
    """A sweep job's dir name from its override string: execution keys dropped (also dotted ones like
    trainer.precision, which Hydra's exact-match exclude_keys misses), path separators replaced (they
    would nest directories), and long names cut to their head plus a short hash (file systems cap a
    name at 255 bytes)."""
    items = [item for item in override_dirname.split(",") if not is_execution_key(item.split("=", 1)[0])]
    name = ",".join(items).replace("/", "_").replace("\\", "_")
    if len(name.encode()) <= limit:
        return name
    return name.encode()[:limit].decode(errors="ignore") + "~" + hashlib.sha256(name.encode()).hexdigest()[:8]


def condition_label(override_dirname: str, architecture: str = "") -> str:
    """A run's condition as a short name for dashboards: its job dir name (safe_dir_name) without the
    seed, led by `sae=<architecture>` when the overrides do not pick it, e.g. `sae=topk,k=32`."""
    items = [item for item in safe_dir_name(override_dirname).split(",")
             if item and item.split("=", 1)[0].lstrip("+~") != "seed"]
    if architecture and not any(item.split("=", 1)[0].lstrip("+~") == "sae" for item in items):
        items.insert(0, f"sae={architecture}")
    return ",".join(items)


def flat_keys(node: dict, prefix: str = "") -> dict:
    """A nested config dict as {dotted key: value}."""
    out = {}
    for k, v in node.items():
        if isinstance(v, dict):
            out.update(flat_keys(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def experiment_of(cfg: DictConfig | dict) -> dict:
    """What a run dir's results depend on: its condition and its seed (the first member's)."""
    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    return {**flat_keys(condition_of(plain)), "seed": plain.get("seed")}
