"""Command-line helpers that run before Hydra parses anything.

* `seed=1..20` is what researchers type; Hydra has no such syntax, so it becomes `seed=range(1,21)`.
* An unknown config-group choice (`sae=foo`) stops with one sentence instead of Hydra's search-path dump.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from sae_lab.config import CONF_DIR, CONFIG_GROUPS, ConfigError, group_choices

_RANGE = re.compile(r"^(?P<key>[+~]*[\w.]+)=(?P<a>-?\d+)\.\.(?P<b>-?\d+)$")


def rewrite_ranges(argv: Sequence[str]) -> list[str]:
    """`key=a..b` -> `key=range(a,b+1)` (inclusive, as the user means it)."""
    out = []
    for arg in argv:
        m = _RANGE.match(arg)
        if m:
            a, b = int(m["a"]), int(m["b"])
            if b < a:
                raise ConfigError(f"{m['key']}={a}..{b} is an empty range; write a..b with a <= b.")
            arg = f"{m['key']}=range({a},{b + 1})"
        out.append(arg)
    return out


def _choices_in(override) -> list[str]:
    """The literal choices an override names (sweeps expanded; globs and ranges skipped)."""
    from hydra.core.override_parser.types import ChoiceSweep, Glob

    value = override.value()
    if isinstance(value, Glob):
        return []
    if isinstance(value, ChoiceSweep):
        return [str(v) for v in value.list]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [] if value is None else [str(value)]


def _known_key(key: str) -> bool:
    from omegaconf import OmegaConf

    from sae_lab.config import TrainConfig

    head, _, rest = key.partition(".")
    if head == "sae" and rest:
        from sae_lab.sae.registry import all_keys

        return rest in all_keys()
    if head in ("model", "logger") and rest:
        return True  # arguments of the chosen _target_; instantiating it judges them
    return OmegaConf.select(OmegaConf.structured(TrainConfig), key, default="<missing>") != "<missing>"


def check_overrides(argv: Sequence[str], conf_dir: Path = CONF_DIR) -> None:
    """Raise ConfigError for an unknown config-group choice or an unknown key."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = [a for a in argv if not a.startswith("-") and "=" in a]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as err:  # Hydra's parser raises its own error types
        raise ConfigError(f"Could not parse the overrides {' '.join(overrides)!r}: {err}".rstrip(".") + ".") \
            from None
    for override in parsed:
        group = override.key_or_group
        if override.is_delete() or group.startswith("hydra"):
            continue
        if group not in CONFIG_GROUPS and (override.is_add() or override.is_force_add()):
            continue  # `+key=value` adds a key on purpose; the schema check after composing judges it
        if group not in CONFIG_GROUPS:
            if not _known_key(group):
                raise ConfigError(f"{group} is not a setting sae_lab knows; the keys are in conf/train.yaml "
                                  f"and its groups: {', '.join(CONFIG_GROUPS)}.")
            continue
        allowed = group_choices(group, conf_dir)
        for choice in _choices_in(override):
            if choice not in allowed:
                raise ConfigError(f"{group}={choice} is not a known choice; allowed: {', '.join(allowed)}.")


def prepare_argv(argv: Sequence[str], conf_dir: Path = CONF_DIR) -> list[str]:
    argv = rewrite_ranges(argv)
    check_overrides(argv, conf_dir)
    return argv
