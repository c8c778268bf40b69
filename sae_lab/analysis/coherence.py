"""Coherence of each condition's final dictionaries (the DB-KSVD paper's Figure 2): every atom's largest
|cos| with another atom of its own dictionary, pooled over the condition's seeds.

coherence.csv: per condition at its final common epoch, the mean and median per-atom coherence, the
fraction of atoms above 0.5 and 0.9, and the RMS coherence (mean over seeds); coherence.png: the histogram
of per-atom coherence, one step line per condition. Read from the snapshots' decoders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from sae_lab.analysis.conditions import Condition
from sae_lab.analysis.figures import LINESTYLES, _save
from sae_lab.analysis.pairwise import common_epochs
from sae_lab.analysis.summary import fmt
from sae_lab.artifacts import write_csv
from sae_lab.metrics.spectrum import coherence

MAX_ATOMS = 16384  # larger dictionaries cost an m × m × d product per seed: left out of the report
THRESHOLDS = (0.5, 0.9)


def condition_coherence(cond: Condition) -> tuple[dict, np.ndarray] | None:
    """(csv row, pooled per-atom coherence) at the condition's last common epoch; None without one."""
    epochs = common_epochs(cond)
    if not epochs:
        return None
    epoch, values, rms = epochs[-1], [], []
    for seed, run in sorted(cond.members.items()):
        decoder = run.read_snapshot(seed, epoch)["decoder"]
        if len(decoder) > MAX_ATOMS:
            return None
        per_atom, r = coherence(decoder)
        values.append(per_atom.numpy())
        rms.append(r)
    pooled = np.concatenate(values)
    row = {"condition": cond.name, "epoch": epoch, "n_seeds": len(values), "n_atoms": len(pooled),
           "mean": float(pooled.mean()), "median": float(np.median(pooled)),
           **{f"above_{t:g}": float((pooled > t).mean()) for t in THRESHOLDS}, "rms": float(np.mean(rms))}
    return row, pooled


def coherence_histogram(pooled: dict[str, np.ndarray], path: Path) -> Figure:
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    bins = np.linspace(0.0, 1.0, 51)
    for i, (name, values) in enumerate(pooled.items()):
        ax.hist(values, bins=bins, histtype="step", density=True, linestyle=LINESTYLES[i % len(LINESTYLES)],
                label=name)
    ax.set_xlabel("per-atom coherence max_{j≠i} |cos(d_i, d_j)|")
    ax.set_ylabel("density")
    ax.set_title("Coherence of the final dictionaries (all seeds pooled)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    _save(fig, path)
    return fig


def coherence_section(conditions: list[Condition], out: Path) -> list[str]:
    """summary.md lines, coherence.csv and coherence.png; [] when no condition has a readable final epoch."""
    rows, pooled = [], {}
    for cond in conditions:
        result = condition_coherence(cond)
        if result is not None:
            rows.append(result[0])
            pooled[cond.name] = result[1]
    if not rows:
        return []
    write_csv(out / "coherence.csv", rows)
    coherence_histogram(pooled, out / "coherence.png")
    lines = ["## Coherence of the final dictionaries (per-atom max |cos| with another atom of the same "
             "dictionary, seeds pooled; coherence.png)", "",
             "| condition | epoch | atoms | mean | median | > 0.5 | > 0.9 | RMS |",
             "| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['condition']} | {r['epoch']} | {r['n_atoms']} | {fmt(r['mean'])} | {fmt(r['median'])} | "
              f"{fmt(r['above_0.5'])} | {fmt(r['above_0.9'])} | {fmt(r['rms'])} |" for r in rows]
    return lines + [""]
