"""Per-member export in the layout SAELens loads (`cfg.json` + `sae_weights.safetensors`), and back."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file

from sae_lab.artifacts import RunDir, atomic_save_tensors, atomic_write_text
from sae_lab.sae.base import MemberSAE, config_keys


def saelens_cfg(sae: MemberSAE, model_name: str, hook_name: str, seed: int) -> dict:
    return {
        "architecture": sae.architecture,
        "d_in": sae.d_model,
        "d_sae": sae.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        **sae.export_cfg(),
        "metadata": {"model_name": model_name, "hook_name": hook_name, "seed": seed,
                     "trained_with": "sae_lab"},
    }


def export_members(run: RunDir, sae: MemberSAE, model_name: str, hook_name: str) -> list[Path]:
    """Write every member to run_dir/sae/seed{S}/; returns the directories."""
    out = []
    for member, seed in enumerate(sae.member_seeds):
        atomic_save_tensors(run.sae_weights(seed), sae.member_state(member))
        cfg = saelens_cfg(sae, model_name, hook_name, seed)
        atomic_write_text(run.sae_cfg(seed), json.dumps(cfg, indent=2) + "\n")
        out.append(run.sae_dir(seed))
    return out


def load_member(run_dir: str | Path, seed: int) -> MemberSAE:
    """Load one exported member as a single-member SAE (for notebooks: encode / reconstruct)."""
    from sae_lab.sae.registry import architecture_class

    run = RunDir(Path(run_dir))
    cfg = json.loads(run.sae_cfg(seed).read_text())
    weights = load_file(str(run.sae_weights(seed)))
    cls = architecture_class(cfg["architecture"])
    options = {key: cfg[key] for key in config_keys(cls.config_class) if key in cfg}
    sae = cls(cfg["d_in"], cfg["d_sae"], [seed], k=cfg.get("k"), **options)
    own = sae.state_dict()
    if "W_enc" in weights:  # SAELens [d_in, d_sae] -> sae_lab's feature-major [d_sae, d_in]
        weights["W_enc"] = weights["W_enc"].T.contiguous()
    sae.load_state_dict({name: value[None] if own[name].dim() > value.dim() else value
                         for name, value in weights.items() if name in own}, strict=False)
    return sae
