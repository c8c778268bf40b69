"""The command line's overrides, read before Hydra parses anything.

* `seed=1..20` is what researchers type; Hydra has no such syntax, so it becomes `seed=range(1,21)`.
* An unknown config-group choice (`sae=foo`) stops with one sentence instead of Hydra's search-path dump.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from sae_lab.config import CONF_DIR, CONFIG_GROUPS, ConfigError, group_choices

_RANGE = re.compile(r"^(?P<key>[+~]*[\w.]+)=(?P<a>-?\d+)\.\.(?P<b>-?\d+)$")
# Anything written like a range (`seed=a..b`, `seed=1..x`), but not a path such as `model.name=../dir`.
_NOT_A_RANGE = re.compile(r"^(?P<key>[+~]*[\w.]+)=[\w+-]+\.\.[\w+-]+$")


def _hydra_flags() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Hydra's flags read from its own argument parser: those whose next argument is their value, those
    after which Hydra does something other than run the job (print, complete, show help), and -m."""
    from hydra._internal.utils import get_args_parser

    # Settings of the run itself; every other flag makes Hydra print or complete instead of running.
    runs = {"overrides", "run", "multirun", "config_path", "config_name", "config_dir", "package", "resolve"}
    value, no_run, multirun = [], [], []
    for action in get_args_parser()._actions:
        # -sc takes no argparse value, but Hydra reads the next word (install=bash) as its argument
        if action.option_strings and (action.nargs in (None, "?") or action.dest == "shell_completion"):
            value += action.option_strings
        if action.dest not in runs:
            no_run += action.option_strings
        if action.dest == "multirun":
            multirun += action.option_strings
    return tuple(value), tuple(no_run), tuple(multirun)


VALUE_FLAGS, NO_RUN_FLAGS, MULTIRUN_FLAGS = _hydra_flags()


def overrides_in(argv: Sequence[str]) -> list[int]:
    """Positions of the `key=value` overrides in argv; flag values (`-sc install=bash`) are not overrides."""
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg in VALUE_FLAGS:
            skip = arg not in ("-i", "--info") or (i + 1 < len(argv) and "=" not in argv[i + 1])
        elif not arg.startswith("-") and "=" in arg:
            out.append(i)
    return out


def rewrite_ranges(argv: Sequence[str]) -> list[str]:
    """`key=a..b` -> `key=range(a,b+1)` (inclusive, as the user means it); `a..b` that is not two integers
    is refused here, before any sweep dir exists."""
    out, positions = [], set(overrides_in(argv))
    for i, arg in enumerate(argv):
        bad = _NOT_A_RANGE.match(arg) if i in positions else None
        if bad and not _RANGE.match(arg):
            raise ConfigError(f"{arg} is not a range: write {bad['key']}=a..b with integers a <= b "
                              f"(e.g. {bad['key']}=1..20).")
        m = _RANGE.match(arg) if i in positions else None
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


def _experiment_choices(experiments: Sequence[str], conf_dir: Path) -> dict[str, list[str]]:
    """Group choices the presets make in their defaults (`override /model: synthetic`)."""
    from omegaconf import OmegaConf

    out: dict[str, list[str]] = {}
    for name in experiments:
        path = conf_dir / "experiment" / f"{name}.yaml"
        for item in OmegaConf.load(path).get("defaults", []) if path.is_file() else []:
            for key, value in (item.items() if OmegaConf.is_dict(item) else []):
                group = str(key).removeprefix("override ").lstrip("/")
                if group in CONFIG_GROUPS:
                    out.setdefault(group, []).append(str(value))
    return out


def _known_key(key: str, choices: dict[str, list[str]] | None = None, conf_dir: Path = CONF_DIR) -> bool:
    from omegaconf import OmegaConf

    from sae_lab.config import TrainConfig

    head, _, rest = key.partition(".")
    if head == "sae" and rest:
        from sae_lab.sae.configs import all_keys

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

    overrides = [argv[i] for i in overrides_in(argv)]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as err:  # Hydra's parser raises its own error types
        raise ConfigError(f"Could not parse the overrides {' '.join(overrides)!r}: {err}".rstrip(".") + ".") \
            from None
    choices = {o.key_or_group: _choices_in(o) for o in parsed if o.key_or_group in CONFIG_GROUPS}
    for group, picked in _experiment_choices(choices.get("experiment", []), conf_dir).items():
        choices.setdefault(group, picked)  # `experiment=certificate model.n_latents=64`: the preset picks model
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
    """Ranges rewritten, `+experiment=` accepted as `experiment=` (a defaults entry since
    conf/train.yaml lists `experiment: null`), then every override checked."""
    argv = rewrite_ranges(argv)
    positions = set(overrides_in(argv))
    argv = [a.removeprefix("+") if i in positions and a.startswith("+experiment=") else a for i, a in enumerate(argv)]
    check_overrides(argv, conf_dir)
    return argv
