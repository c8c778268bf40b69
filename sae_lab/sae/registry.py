"""Architectures by name: each registers its class together with its config dataclass.

`conf/sae/<name>.yaml` picks one; the Hydra schema, `build_sae`, the exported cfg.json and
`load_member` all derive from the registered config; `sae_lab.sae` imports every module of the
package, so adding an architecture touches its own module and its yaml only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

from sae_lab.sae.base import MemberSAE, SAEConfig, config_keys

REGISTRY: dict[str, type[MemberSAE]] = {}


def register(name: str, config_class: type[SAEConfig]) -> Callable[[type[MemberSAE]], type[MemberSAE]]:
    """Class decorator: `@register("topk", TopKConfig)`."""
    def wrap(cls: type[MemberSAE]) -> type[MemberSAE]:
        cls.architecture, cls.config_class = name, config_class
        REGISTRY[name] = cls
        return cls
    return wrap


def architecture_class(name: str) -> type[MemberSAE]:
    if name not in REGISTRY:
        raise ValueError(f"sae.architecture={name!r} is not known; allowed: {', '.join(sorted(REGISTRY))}.")
    return REGISTRY[name]


def all_keys() -> set[str]:
    """Every key any registered architecture has (what `sae.X=...` may name)."""
    return {"architecture"} | {key for cls in REGISTRY.values() for key in config_keys(cls.config_class)}


def schema_node(name: str) -> type:
    """The Hydra node behind conf/sae/<name>.yaml: the architecture's config with its defaults and
    `architecture`, plus every other architecture's keys as null, so `sae.X=...` composes for any
    architecture and an option that does not apply is refused by `architecture_config` with one
    sentence, not by Hydra's struct error."""
    own = REGISTRY[name].config_class
    foreign = sorted(all_keys() - set(config_keys(own)) - {"architecture"})
    return dataclasses.make_dataclass(
        f"{own.__name__}Schema",
        [("architecture", str, dataclasses.field(default=name))]
        + [(key, Optional[Any], dataclasses.field(default=None)) for key in foreign],  # noqa: UP045
        bases=(own,))


def architecture_config(node: Mapping[str, Any]) -> tuple[type[MemberSAE], SAEConfig]:
    """The class and typed config for a composed `sae` node; raises ValueError with one sentence for an
    unknown architecture or a key it does not have (keys of other architectures may be null)."""
    cls = architecture_class(str(node.get("architecture", "topk")))
    own = config_keys(cls.config_class)
    for key, value in node.items():
        if key != "architecture" and key not in own and value is not None:
            known = key in all_keys()
            raise ValueError(f"sae.{key} {'does not apply to' if known else 'is not a key of'} "
                             f"sae={cls.architecture}; its keys are {', '.join('sae.' + k for k in own)}.")
    return cls, cls.make_config(None, {k: v for k, v in node.items() if k in own})


def build_sae(architecture: str, d_model: int, d_sae: int, member_seeds: Sequence[int], k: int | None = None,
              cfg: SAEConfig | None = None, **options: Any) -> MemberSAE:
    """Build the named architecture from its config (`cfg`) and/or keyword options."""
    cls = architecture_class(architecture)
    if d_sae < 1:
        raise ValueError(f"d_sae={d_sae} must be at least 1.")
    return cls(d_model, d_sae, member_seeds, k=k, cfg=cfg, **{k_: v for k_, v in options.items() if v is not None})
