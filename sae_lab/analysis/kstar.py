"""k*(t) when a sweep varies k: per group of conditions that differ only in k, the smallest k whose
final-epoch CE_rec (mean over seeds) reaches each target t, interpolated on the k grid."""

from __future__ import annotations

import json

import numpy as np

from sae_lab.analysis.conditions import Condition
from sae_lab.metrics.behaviour import k_star

TARGETS = (0.85, 0.90)  # the thresholds of the proxy-gap study


def kstar_rows(conditions: list[Condition], trajectories: dict[str, list[dict]],
               targets: tuple[float, ...] = TARGETS) -> list[dict]:
    groups: dict[str, list[tuple[int, float, str]]] = {}
    for cond in conditions:
        rows = [r for r in trajectories.get(cond.name, []) if np.isfinite(r.get("ce_rec", np.nan))]
        if "k" not in cond.config or not rows:
            continue
        key = json.dumps({k: v for k, v in cond.config.items() if k != "k"}, sort_keys=True, default=str)
        groups.setdefault(key, []).append((int(cond.config["k"]), float(rows[-1]["ce_rec"]), cond.name))
    out = []
    for members in groups.values():
        if len({k for k, _, _ in members}) < 2:
            continue
        name = ", ".join(p for p in members[0][2].split(", ") if not p.startswith("k=")) or "all runs"
        ks, ce = [k for k, _, _ in members], [c for _, c, _ in members]
        grid = " ".join(map(str, sorted(ks)))
        out += [{"group": name, "target": t, "k_star": k, "k_grid": grid} for t, k in kstar_of(ks, ce, targets).items()]
    return out


def kstar_of(ks: list[int], ce_recs: list[float], targets: tuple[float, ...] = TARGETS) -> dict[float, float | None]:
    """k*(t) for each target t on one k grid (None: not reached); the proxy-gap tables use it too."""
    return {t: k_star(ks, ce_recs, t) for t in targets}


def kstar_table(rows: list[dict]) -> str:
    lines = ["| conditions | target t | k*(t) | k grid |", "| :--- | ---: | ---: | :--- |"]
    lines += [f"| {r['group']} | {r['target']:.2f} | "
              f"{'not reached' if r['k_star'] is None else format(r['k_star'], '.1f')} | {r['k_grid']} |" for r in rows]
    return "\n".join(lines)
