"""Every architecture's config dataclass by name, known without importing torch, and what derives from it:
the Hydra schema node, the keys `sae.X` may name, the typed config of a composed `sae` node.

`config_index.json` holds each registered architecture's config fields (name, type, default) and the
sha256 of every source file of the package they came from. `read_index` rebuilds the dataclasses from it
only while every hash still matches; after any edit to sae_lab/sae it returns None and the registry imports
the modules themselves (slower, never wrong). Refresh it with `python -m sae_lab.sae.configs`;
tests/sae/test_configs_index.py fails while it is stale.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from sae_lab.sae.registry import (
    PACKAGE_DIR,
    REGISTRY,
    SAEConfig,
    architecture_modules,
    architectures_loaded,
    config_keys,
    load_architectures,
)

if TYPE_CHECKING:
    from sae_lab.sae.base import MemberSAE

INDEX_FILE = PACKAGE_DIR / "config_index.json"
# What a field's type may name (the annotation as written, evaluated here).
_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "list": list, "dict": dict, "tuple": tuple,
          "Any": Any, "Optional": Optional, "None": None}


def source_hashes() -> dict[str, str]:
    """sha256 of registry.py and of every architecture module, by file name."""
    names = ["registry", *architecture_modules()]
    return {f"{n}.py": hashlib.sha256((PACKAGE_DIR / f"{n}.py").read_bytes()).hexdigest() for n in names}


def _field_type(field: dataclasses.Field) -> str:
    return field.type if isinstance(field.type, str) else getattr(field.type, "__name__", repr(field.type))


def _default(field: dataclasses.Field) -> dict[str, Any]:
    if field.default is not dataclasses.MISSING:
        return {"default": field.default}
    return {"factory": field.default_factory()}


def build_index() -> dict[str, Any]:
    """The index of the architectures the package's modules register."""
    architectures = {}
    for name, cls in sorted(load_architectures().items()):
        config = cls.config_class
        fields = [{"name": f.name, "type": _field_type(f), **_default(f)} for f in dataclasses.fields(config)]
        architectures[name] = {"config": config.__name__, "fields": fields}
    return {"sources": source_hashes(), "architectures": architectures}


def _dataclass(name: str, fields: list[dict[str, Any]]) -> type[SAEConfig]:
    spec = []
    for f in fields:
        kind = eval(f["type"], {"__builtins__": {}}, _TYPES)  # noqa: S307 - annotations we wrote ourselves
        if "factory" in f:
            default = dataclasses.field(default_factory=lambda v=f["factory"]: copy.deepcopy(v))
        else:
            default = dataclasses.field(default=f["default"])
        spec.append((f["name"], kind, default))
    return dataclasses.make_dataclass(name, spec, bases=(SAEConfig,))


@lru_cache(maxsize=1)
def _read(text: str) -> dict[str, type[SAEConfig]] | None:
    index = json.loads(text)
    if index.get("sources") != source_hashes():
        return None
    return {name: _dataclass(a["config"], a["fields"]) for name, a in index["architectures"].items()}


def read_index() -> dict[str, type[SAEConfig]] | None:
    """{architecture: config dataclass} rebuilt from the index, or None when it is missing or stale."""
    try:
        text = INDEX_FILE.read_text()
    except OSError:
        return None
    return _read(text)


def write_index() -> Path:
    """Write config_index.json from the architecture modules (atomically: the next start reads it)."""
    from sae_lab.artifacts import atomic_write_text  # imports torch: fine here, the modules are imported anyway

    atomic_write_text(INDEX_FILE, json.dumps(build_index(), indent=1) + "\n")
    return INDEX_FILE


def config_classes() -> dict[str, type[SAEConfig]]:
    """{architecture: its config dataclass}, without importing torch while the config index is current;
    classes registered in this process (a notebook's own architecture) are included and win."""
    if not architectures_loaded():
        indexed = read_index()
        if indexed is not None:
            return {**indexed, **{name: cls.config_class for name, cls in REGISTRY.items()}}
    return {name: cls.config_class for name, cls in load_architectures().items()}


def all_keys() -> set[str]:
    """Every key any registered architecture has (what `sae.X=...` may name)."""
    return {"architecture"} | {key for config in config_classes().values() for key in config_keys(config)}


def schema_node(name: str) -> type:
    """The Hydra node behind conf/sae/<name>.yaml: the architecture's config with its defaults and
    `architecture`, plus every other architecture's keys as null, so `sae.X=...` composes for any
    architecture and an option that does not apply is refused by `sae_config` with one
    sentence, not by Hydra's struct error."""
    own = config_classes()[name]
    foreign = sorted(all_keys() - set(config_keys(own)) - {"architecture"})
    return dataclasses.make_dataclass(
        f"{own.__name__}Schema",
        [("architecture", str, dataclasses.field(default=name))]
        + [(key, Optional[Any], dataclasses.field(default=None)) for key in foreign],  # noqa: UP045
        bases=(own,))


def sae_config(node: Mapping[str, Any]) -> tuple[str, SAEConfig]:
    """The architecture name and typed config for a composed `sae` node; raises ValueError with one sentence
    for an unknown architecture or a key it does not have (keys of other architectures may be null)."""
    configs = config_classes()
    name = str(node.get("architecture", "topk"))
    if name not in configs:
        raise ValueError(f"sae.architecture={name!r} is not known; allowed: {', '.join(sorted(configs))}.")
    own = config_keys(configs[name])
    for key, value in node.items():
        if key != "architecture" and key not in own and value is not None:
            known = key in all_keys()
            raise ValueError(f"sae.{key} {'does not apply to' if known else 'is not a key of'} "
                             f"sae={name}; its keys are {', '.join('sae.' + k for k in own)}.")
    options = {k: v for k, v in node.items() if k in own and v is not None}
    return name, dataclasses.replace(configs[name](), **options)


def architecture_config(node: Mapping[str, Any]) -> tuple[type[MemberSAE], SAEConfig]:
    """The class and typed config for a composed `sae` node (sae_config, with the classes imported)."""
    load_architectures()
    name, config = sae_config(node)
    return REGISTRY[name], config


if __name__ == "__main__":
    print(f"wrote {write_index()}")
