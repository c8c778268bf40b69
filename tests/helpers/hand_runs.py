"""Run dirs built by hand (config, metrics rows, decoder snapshots) for report tests with known values."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from sae_lab.artifacts import RunDir, atomic_save_tensors, write_csv


def make_run(root: Path, name: str, cfg: dict, decoders: dict[int, torch.Tensor]) -> RunDir:
    """A finished run of seed cfg["seed"] with one snapshot and one metrics row per epoch in `decoders`."""
    run = RunDir(root / name)
    run.root.mkdir(parents=True)
    run.config.write_text(yaml.safe_dump(cfg))
    seed, rows = cfg["seed"], []
    for epoch, decoder in decoders.items():
        atomic_save_tensors(run.snapshot(seed, epoch),
                            {"decoder": decoder, "firing_counts": torch.ones(len(decoder), dtype=torch.int64)})
        rows.append({"epoch": epoch, "step": 10 * epoch, "seed": seed, "member": 0, "mse_mean": 1.0 / (1 + epoch),
                     "fvu": 0.5, "l0": 2.0, "alive_frac": 1.0})
    write_csv(run.metrics_csv, rows)
    return run


def random_decoder(seed: int, d_sae: int = 8, d_model: int = 6) -> torch.Tensor:
    return torch.randn(d_sae, d_model, generator=torch.Generator().manual_seed(seed))


def make_run_snapshots(root: Path, name: str, cfg: dict, snapshots: dict[int, tuple[torch.Tensor, torch.Tensor]],
                       fvu: dict[int, float] | None = None) -> RunDir:
    """As make_run, with each epoch's (decoder, firing counts) and, optionally, its FVU given."""
    run = RunDir(root / name)
    run.root.mkdir(parents=True)
    run.config.write_text(yaml.safe_dump(cfg))
    seed, rows = cfg["seed"], []
    for epoch, (decoder, counts) in snapshots.items():
        atomic_save_tensors(run.snapshot(seed, epoch), {"decoder": decoder, "firing_counts": counts})
        rows.append({"epoch": epoch, "step": 10 * epoch, "seed": seed, "member": 0, "mse_mean": 1.0 / (1 + epoch),
                     "fvu": (fvu or {}).get(epoch, 0.5), "l0": 2.0, "alive_frac": float((counts > 0).float().mean())})
    write_csv(run.metrics_csv, rows)
    return run


def write_export(run: RunDir, seed: int, encoder: torch.Tensor, decoder: torch.Tensor) -> None:
    """sae/seed{S}/ in the SAELens layout: W_enc [d_model, d_sae] from encoder rows [d_sae, d_model]."""
    atomic_save_tensors(run.sae_weights(seed), {"W_enc": encoder.T.contiguous(), "W_dec": decoder})
    run.sae_cfg(seed).write_text(json.dumps({"architecture": "topk", "d_in": decoder.shape[1],
                                             "d_sae": decoder.shape[0]}))
