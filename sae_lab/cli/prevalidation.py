"""A run's composed config judged before Hydra creates anything: its values, its sweep's values, and that
its run/sweep dir and cache dir can be written. A rejected start leaves no dir behind."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sae_lab.cli.overrides import MULTIRUN_FLAGS, NO_RUN_FLAGS, overrides_in
from sae_lab.config import CONF_DIR, CONFIG_GROUPS, ConfigError


def check_sweep_values(argv: Sequence[str]) -> None:
    """Every value a sweep lists (`-m seed=1,x`) has its key's type, checked against the schema before the
    sweep dir exists; values of the right type that a job cannot use (k > d_sae) fail that job alone."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from sae_lab.config import TrainConfig
    from sae_lab.config.validation import TYPE_WORDS

    schema = OmegaConf.structured(TrainConfig)
    parsed = OverridesParser.create().parse_overrides([argv[i] for i in overrides_in(argv)])
    for override in parsed:
        key = override.key_or_group
        if not isinstance(override.value(), ChoiceSweep) or key in CONFIG_GROUPS or key.startswith(("hydra", "sae.")):
            continue
        expected = OmegaConf.select(schema, key, default=None)
        if isinstance(expected, bool | int | float | str):
            for value in override.value().list:
                try:
                    OmegaConf.update(schema, key, value, merge=True)
                except (OmegaConfBaseException, ValueError):
                    raise ConfigError(f"{key} must be {TYPE_WORDS[type(expected)]}, got {value!r}.") from None


def _check_output_dirs(cfg, multirun: bool, swept: set[str]) -> None:  # noqa: ANN001 (a composed DictConfig)
    """The run (or sweep) dir and the cache dir can be created and written, before anything is created."""
    from sae_lab.errors import check_writable_dir

    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    check_writable_dir(cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir, key)
    if "cache_dir" not in swept:
        check_writable_dir(cfg.cache_dir, "cache_dir")


def prevalidate(argv: Sequence[str], conf_dir: Path = CONF_DIR) -> None:
    """Compose and validate a single run's config before Hydra creates its run dir, so a rejected run
    leaves no dir behind; for every start, check that the run/sweep dir and the cache dir are writable.
    Sweeps check their values' types here and each job's config in the job (a bad job fails alone); help
    flags skip this."""
    if any(a in NO_RUN_FLAGS for a in argv):
        return
    from hydra import compose, initialize_config_dir

    from sae_lab.config import validate

    overrides = [argv[i] for i in overrides_in(argv) if not argv[i].lstrip("+~").startswith("hydra")]
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
    hydra_dirs = [argv[i] for i in overrides_in(argv) if argv[i].startswith(("hydra.run.dir=", "hydra.sweep.dir="))]
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose("train", overrides=[o for o in overrides if o not in sweeps] + hydra_dirs,
                          return_hydra_config=True)
    except Exception as err:  # noqa: BLE001 - Hydra's composition errors: one sentence, not a dump
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"The config could not be composed: {first}".rstrip(".") + ".") from None
    multirun = any(a in MULTIRUN_FLAGS for a in argv) or str(cfg.hydra.mode).endswith("MULTIRUN")
    _check_output_dirs(cfg, multirun, swept={o.split("=", 1)[0] for o in sweeps})
    if multirun:
        check_sweep_values(argv)
        return  # each job checks the rest of its own config (a bad job fails alone)
    if sweeps:
        raise ConfigError(f"{sweeps[0]} lists several values; add -m to run one job per value.")
    from omegaconf import open_dict

    with open_dict(cfg):
        del cfg["hydra"]
    validate(cfg)
