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


def _yaml_keys(group: str, choice: str, conf_dir: Path) -> set[str]:
    """Dotted keys a group's yaml defines, following `defaults` within the group (pythia-70m -> hf)."""
    from omegaconf import OmegaConf

    path = conf_dir / group / f"{choice}.yaml"
    if not path.is_file():
        return set()
    node = OmegaConf.load(path)
    keys = set()
    for item in node.get("defaults", []):
        if isinstance(item, str) and item not in ("_self_",) and not item.startswith("/"):
            keys |= _yaml_keys(group, item, conf_dir)

    def walk(n, prefix: str) -> None:
        for k in n:
            if k != "defaults":
                keys.add(prefix + str(k))
                child = n._get_node(k)  # without resolving: `???` values are keys too
                if OmegaConf.is_dict(child):
                    walk(child, f"{prefix}{k}.")

    walk(node, "")
    return keys


def _known_key(key: str, choices: dict[str, list[str]] | None = None, conf_dir: Path = CONF_DIR) -> bool:
    from omegaconf import OmegaConf

    from sae_lab.config import TrainConfig

    head, _, rest = key.partition(".")
    if head == "sae" and rest:
        from sae_lab.sae.registry import all_keys

        return rest in all_keys()
    if head in ("model", "logger") and rest:  # arguments of the chosen _target_: its yaml names them
        picked = (choices or {}).get(head) or [_default_choice(head, conf_dir)]
        return any(rest in _yaml_keys(head, c, conf_dir) for c in picked)
    return OmegaConf.select(OmegaConf.structured(TrainConfig), key, default="<missing>") != "<missing>"


def _default_choice(group: str, conf_dir: Path) -> str:
    from omegaconf import OmegaConf

    for item in OmegaConf.load(conf_dir / "train.yaml").defaults:
        if OmegaConf.is_dict(item) and group in item:
            return str(item[group])
    return ""


def check_overrides(argv: Sequence[str], conf_dir: Path = CONF_DIR) -> None:
    """Raise ConfigError for an unknown config-group choice or an unknown key."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = [a for a in argv if not a.startswith("-") and "=" in a]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as err:  # Hydra's parser raises its own error types
        raise ConfigError(f"Could not parse the overrides {' '.join(overrides)!r}: {err}".rstrip(".") + ".") \
            from None
    choices = {o.key_or_group: _choices_in(o) for o in parsed if o.key_or_group in CONFIG_GROUPS}
    for override in parsed:
        group = override.key_or_group
        if override.is_delete() or group.startswith("hydra"):
            continue
        if group not in CONFIG_GROUPS and (override.is_add() or override.is_force_add()):
            continue  # `+key=value` adds a key on purpose; the schema check after composing judges it
        if group not in CONFIG_GROUPS:
            if not _known_key(group, choices, conf_dir):
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


def run_task(cfg) -> None:
    """One Hydra job: validate (fast: no Lightning yet), then train and print the final metrics."""
    import sys
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from sae_lab.config import validate

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        validate(cfg)
        from sae_lab.sae.module import NonFiniteLossError
        from sae_lab.train import format_final, train

        try:
            last = train(cfg, run_dir, in_sweep=hydra_cfg.mode == RunMode.MULTIRUN)
        except NonFiniteLossError as err:
            raise ConfigError(str(err)) from None
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"Final metrics (eval set) — run dir: {run_dir}\n{format_final(last)}")


def main() -> None:
    """`python train.py [-m] key=value ...`: ranges rewritten and choices checked before Hydra parses,
    and the heavy imports (Lightning) only after the config validated."""
    import sys

    import hydra

    from sae_lab.config import register_configs

    try:
        sys.argv[1:] = prepare_argv(sys.argv[1:])
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    register_configs()
    hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")(run_task)()
