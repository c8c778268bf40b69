"""Config keys that are resolved against the subject's shape, in `validate` (the subject's constructor
reads only its config, so this costs nothing):

- `d_sae_over_d_model`: d_sae = round(ratio × d_model) (the proxy-gap study's d_sae = 32·d_model);
- `depth`: a depth regime label (early, mid, late) whose layer is data, `depth_layers[model.name][depth]`
  (conf/experiment/proxy_gap.yaml holds the Pythia table).

Both write plain values (d_sae, layer) into the checked config, so config.yaml, conditions, resumes and
the report see an ordinary d_sae and layer; the keys themselves stay recorded beside them.
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig

from sae_lab.errors import ConfigError


def resolve_subject_keys(cfg: DictConfig, subject: Any) -> None:
    """Set cfg.d_sae from d_sae_over_d_model and cfg.layer from depth (no-ops when unset); ConfigError
    with one sentence for a bad value."""
    ratio = cfg.d_sae_over_d_model
    if ratio is not None:
        if not (ratio > 0 and math.isfinite(ratio)):
            raise ConfigError(f"d_sae_over_d_model must be null or a positive number, got {ratio}.")
        if cfg.d_sae_over_erank is not None:  # two rules for one number: which one wins would be a guess
            raise ConfigError(f"set d_sae_over_erank or d_sae_over_d_model, not both (got {cfg.d_sae_over_erank} "
                              f"and {ratio}).")
        cfg.d_sae = max(1, round(ratio * int(subject.d_model)))
        if cfg.k > cfg.d_sae:
            raise ConfigError(f"k={cfg.k} exceeds d_sae={cfg.d_sae}, which d_sae_over_d_model={ratio} gives for "
                              f"d_model={subject.d_model}; set k to at most {cfg.d_sae}.")
    if cfg.depth is not None:
        cfg.layer = depth_layer(cfg)


def depth_layer(cfg: DictConfig) -> int:
    """The layer of cfg.depth for cfg.model.name in cfg.depth_layers; an explicit layer must agree."""
    name = str(cfg.model.get("name", "?"))
    table = cfg.depth_layers.get(name)
    if table is None:
        known = ", ".join(sorted(cfg.depth_layers)) or "none"
        raise ConfigError(f"depth={cfg.depth} needs depth_layers for model {name} (known: {known}); set "
                          "depth_layers or use depth=null and layer=<l>.")
    if cfg.depth not in table:
        raise ConfigError(f"depth={cfg.depth} is not in depth_layers for model {name}; allowed: "
                          f"{', '.join(table)}.")
    layer = int(table[cfg.depth])
    if cfg.layer is not None and int(cfg.layer) != layer:
        raise ConfigError(f"layer={cfg.layer} contradicts depth={cfg.depth}, which is layer {layer} of model "
                          f"{name}; set only one of them.")
    return layer
