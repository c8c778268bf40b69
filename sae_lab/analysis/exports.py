"""The exported encoders the report needs for Paulo & Belrose's shared-latent fraction. The export holds the
final state only, so it is used at an epoch only where its decoder is that epoch's snapshot decoder."""

from __future__ import annotations

from itertools import combinations

import torch
from safetensors.torch import load_file

from sae_lab.artifacts import RunDir
from sae_lab.metrics import shared_latent_fraction


def read_export(run: RunDir, seed: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(encoder [d_sae, d_model], decoder [d_sae, d_model]) of sae/seed{S}/, or None when it is missing or
    unreadable (a damaged export never costs the report more than this column)."""
    try:
        weights = load_file(str(run.sae_weights(seed)))
        # SAELens stores W_enc as [d_model, d_sae]; rows here are latents
        return weights["W_enc"].T.float(), weights["W_dec"].float()
    except Exception:  # noqa: BLE001 - missing file, truncated file, missing key: all mean "no export"
        return None


def exports_at(members: dict[int, RunDir], decoders: dict[int, torch.Tensor]) -> dict[int, tuple] | None:
    """seed -> (encoder, decoder) when every seed's export reads and its decoder equals `decoders[seed]` (the
    snapshot of the epoch in question), else None."""
    out = {}
    for seed, run in members.items():
        export = read_export(run, seed)
        snapshot = decoders[seed].float()
        if export is None or export[1].shape != snapshot.shape or not torch.allclose(export[1], snapshot):
            return None
        out[seed] = export
    return out


def shared_latent_column(members: dict[int, RunDir], decoders: dict[int, torch.Tensor]) -> dict[tuple, float]:
    """(seed_a, seed_b) -> shared-latent fraction from the exports, or {} when they do not belong here."""
    exports = exports_at(members, decoders)
    if exports is None:
        return {}
    return {(s, t): shared_latent_fraction(*exports[s], *exports[t]) for s, t in combinations(sorted(exports), 2)}
