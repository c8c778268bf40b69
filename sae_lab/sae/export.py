"""Per-member export in the layout SAELens loads (`cfg.json` + `sae_weights.safetensors`), and back.

`architecture` is the SAELens inference class (`SAE.load_from_disk` builds it): topk -> topk,
relu -> standard, jumprelu -> jumprelu, ksvd -> topk (SAELens has no matching pursuit: the nearest
one-shot encoder), and batchtopk / matryoshka -> jumprelu with their learned
threshold repeated per feature, as SAELens itself saves a trained BatchTopK. `sae_lab_architecture`
names the class `load_member` rebuilds; the architecture's own keys stay at the top level.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from safetensors.torch import load_file

from sae_lab.artifacts import RunDir, atomic_save_tensors, atomic_write_text
from sae_lab.sae.base import MemberSAE, config_keys

# Declares the SAELens 6 cfg layout: without it SAELens reads the file as pre-6.0 and drops `metadata`.
SAELENS_CFG_VERSION = "6.0.0"
# sae_lab's `model.positions` as SAELens's `seqpos_slice` (which context positions were trained on).
SEQPOS_SLICES = {"all_but_bos": [1, None], "all": [None]}


def data_metadata(data: Mapping[str, Any]) -> dict[str, Any]:
    """SAELens metadata keys from a subject's token-data spec (`data_spec()` or the config's model.data)."""
    out: dict[str, Any] = {}
    if "dataset" in data:
        out["dataset_path"] = data["dataset"]
    if "context_length" in data:
        out["context_size"] = data["context_length"]
    if "prepend_bos" in data:
        out["prepend_bos"] = data["prepend_bos"]
    if data.get("positions") in SEQPOS_SLICES:
        out["seqpos_slice"] = SEQPOS_SLICES[data["positions"]]
    return out


def configured_data(run: RunDir) -> dict[str, Any]:
    """The token data of the run's config.yaml (model.data plus model.positions; empty for mod113)."""
    if not run.config.is_file():
        return {}
    model = OmegaConf.to_container(OmegaConf.load(run.config)).get("model") or {}
    data = model.get("data") or {}
    return {**data, "positions": model["positions"]} if "positions" in model else dict(data)


def saelens_cfg(sae: MemberSAE, model_name: str, hook_name: str, seed: int,
                data: Mapping[str, Any] | None = None) -> dict:
    return {
        "architecture": sae.saelens_architecture,
        "sae_lab_architecture": sae.architecture,
        "d_in": sae.d_model,
        "d_sae": sae.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        **sae.export_cfg(),
        "metadata": {"model_name": model_name, "hook_name": hook_name, **data_metadata(data or {}),
                     "seed": seed, "trained_with": "sae_lab", "training_architecture": sae.architecture,
                     "sae_lens_version": SAELENS_CFG_VERSION, "sae_lens_training_version": None},
    }


def export_members(run: RunDir, sae: MemberSAE, model_name: str, hook_name: str,
                   data: Mapping[str, Any] | None = None) -> list[Path]:
    """Write every member to run_dir/sae/seed{S}/; returns the directories. `data`: the subject's
    `data_spec()`; by default the token data in the run's config.yaml."""
    data = configured_data(run) if data is None else data
    out = []
    for member, seed in enumerate(sae.member_seeds):
        atomic_save_tensors(run.sae_weights(seed), sae.member_state(member))
        cfg = saelens_cfg(sae, model_name, hook_name, seed, data)
        atomic_write_text(run.sae_cfg(seed), json.dumps(cfg, indent=2) + "\n")
        out.append(run.sae_dir(seed))
    return out


def member_architecture(cfg: Mapping[str, Any]) -> str:
    """sae_lab's architecture of an export (exports before `sae_lab_architecture` named it directly)."""
    return cfg.get("sae_lab_architecture") or {"standard": "relu"}.get(cfg["architecture"], cfg["architecture"])


def load_member(run_dir: str | Path, seed: int) -> MemberSAE:
    """Load one exported member as a single-member SAE (for notebooks: encode / reconstruct)."""
    from sae_lab.sae.registry import architecture_class

    run = RunDir(Path(run_dir))
    cfg = json.loads(run.sae_cfg(seed).read_text())
    cls = architecture_class(member_architecture(cfg))
    options = {key: cfg[key] for key in config_keys(cls.config_class) if key in cfg}
    sae = cls(cfg["d_in"], cfg["d_sae"], [seed], k=cfg.get("k"), **options)
    sae.load_member_state(load_file(str(run.sae_weights(seed))))
    return sae
