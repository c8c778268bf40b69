"""Cross-seed agreement during training: at each eval epoch, every member's decoder against every
other seed available at that epoch — the other members of its ensemble and sibling runs (same
condition, other seed) whose snapshot for that epoch is already on disk — with the EVT null."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from sae_lab.artifacts import RunDir
from sae_lab.config.experiment_keys import condition_of
from sae_lab.metrics import decoder_hungarian, evt_null, mmcs


def sibling_runs(run: RunDir, condition: dict, known: dict[Path, bool] | None = None) -> list[RunDir]:
    """Run dirs next to `run` (same sweep dir) whose resolved config has the same condition.
    `known` caches the verdict per dir, so each sibling's config is parsed once per run."""
    known = {} if known is None else known
    out = []
    for path in sorted(Path(run.root).parent.iterdir()):
        other = RunDir(path)
        if path == run.root or not other.config.is_file():
            continue
        if path not in known:
            try:
                known[path] = condition_of(OmegaConf.load(other.config)) == condition
            except Exception:  # a broken sibling is the report's business, not training's
                continue
        if known[path]:
            out.append(other)
    return out


class CrossSeedAgreement:
    """Adds mmcs / hungarian / null columns to the eval rows of each member."""

    def __init__(self, run: RunDir, condition: dict, hungarian: bool = True, siblings: bool = True) -> None:
        self.run = run
        self.siblings = siblings
        self.condition = condition
        self.hungarian = hungarian
        self._known_siblings: dict[Path, bool] = {}

    def partners(self, epoch: int, own: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        found = dict(own)
        siblings = sibling_runs(self.run, self.condition, self._known_siblings) if self.siblings else []
        for sibling in siblings:
            for seed in sibling.seeds():
                path = sibling.snapshot(seed, epoch)
                if seed not in found and path.is_file():
                    try:
                        found[seed] = sibling.read_snapshot(seed, epoch)["decoder"]
                    except Exception:
                        continue  # being written right now, or broken
        return found

    def columns(self, epoch: int, decoders: dict[int, torch.Tensor]) -> dict[int, dict[str, float]]:
        everyone = self.partners(epoch, decoders)
        m, d = next(iter(decoders.values())).shape
        null = evt_null(d, m)
        # Both scores are symmetric in the pair, so ensemble members share each pair's computation.
        pairs: dict[frozenset, tuple[float, float | None]] = {}

        def scores(a: int, b: int) -> tuple[float, float | None]:
            key = frozenset((a, b))
            if key not in pairs:
                pairs[key] = (mmcs(everyone[a], everyone[b]),
                              decoder_hungarian(everyone[a], everyone[b])["mean"] if self.hungarian else None)
            return pairs[key]

        out = {}
        for seed in decoders:
            others = [s for s in everyone if s != seed]
            row: dict[str, float] = {"n_partners": len(others), "mmcs_null": null}
            if others:
                values = [scores(seed, s) for s in others]
                row["mmcs"] = float(np.mean([v[0] for v in values]))
                row["mmcs_x_random"] = row["mmcs"] / null
                if self.hungarian:
                    row["hungarian_mean"] = float(np.mean([v[1] for v in values]))
            out[seed] = row
        return out
