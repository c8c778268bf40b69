"""The language-model tables of the paper, from any sweep whose conditions fit them.

Table 4 (dictionary size): per group of conditions that differ only in d_sae (d_sae_over_erank goes with
it), each size's d_sae/erank, MMCS/EVT-null ratio at epoch 10 and at the final epoch, MMCS ± sd over
seed pairs and the CE loss score, plus table4_trajectory.png. Table 3 (cross-scale check): per group that
differs in the subject's model/layer, each (model, layer)'s d_model, erank and best ratio over its d_sae
grid at the final epoch. Ratios are the mean over pairs of MMCS divided by the EVT null of that shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sae_lab.analysis.conditions import Condition
from sae_lab.analysis.figures import LINESTYLES, MARKERS, _save, epoch_axis
from sae_lab.analysis.summary import fmt
from sae_lab.artifacts import write_csv

SIZE_KEYS = ("d_sae", "d_sae_over_erank")  # d_sae_over_erank sets d_sae: one axis, not two
SUBJECT_KEYS = ("model", "layer")
EARLY_EPOCH = 10  # the paper's "10-epoch" column


def _key(config: dict, drop: tuple[str, ...]) -> str:
    return json.dumps({k: v for k, v in config.items() if k not in drop}, sort_keys=True, default=str)


def _groups(conditions: list[Condition], drop: tuple[str, ...]) -> list[list[Condition]]:
    groups: dict[str, list[Condition]] = {}
    for cond in conditions:
        groups.setdefault(_key(cond.config, drop), []).append(cond)
    return list(groups.values())


def _group_name(members: list[Condition], varying: tuple[str, ...]) -> str:
    """The condition name without the parts the table varies (`d_sae=512, layer=2` -> `layer=2`)."""
    parts = [p for p in members[0].name.split(", ") if not p.split("=")[0].startswith(varying)]
    return ", ".join(parts) or "all runs"


def erank_of(cond: Condition) -> float:
    """act_effective_rank of the condition's runs (one value per run; the mean if they differ)."""
    if "act_effective_rank" not in cond.metrics:
        return float("nan")
    values = cond.metrics["act_effective_rank"].dropna().to_numpy(dtype=np.float64)
    return float(values.mean()) if values.size else float("nan")


def pair_ratio(pairs: pd.DataFrame, rows: list[dict], epoch: int) -> tuple[float, float, float]:
    """(mean MMCS over pairs, its sd over pairs, mean / EVT null) at `epoch`; NaN where not measured."""
    at = pairs.loc[pairs["epoch"] == epoch, "mmcs"].to_numpy(dtype=np.float64) if not pairs.empty else []
    null = next((r["mmcs_null"] for r in rows if r["epoch"] == epoch), float("nan"))
    if len(at) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(at.mean())
    return mean, float(at.std(ddof=1)) if len(at) > 1 else float("nan"), mean / null


def _size_row(cond: Condition, rows: list[dict], pairs: pd.DataFrame) -> dict:
    final = int(pairs["epoch"].max())
    mean, sd, ratio = pair_ratio(pairs, rows, final)
    erank = erank_of(cond)
    d_sae = int(cond.config["d_sae"])
    ce = next((r.get("ce_loss_score", float("nan")) for r in rows if r["epoch"] == final), float("nan"))
    return {"d_sae": d_sae, "erank": erank, "d_sae_over_erank": d_sae / erank, "n_seeds": len(cond.members),
            f"ratio_epoch{EARLY_EPOCH}": pair_ratio(pairs, rows, EARLY_EPOCH)[2], "epoch": final, "mmcs": mean,
            "mmcs_sd": sd, "ratio": ratio, "ce_loss_score": ce, "condition": cond.name}


def _measured(conditions: list[Condition], pairs: dict[str, pd.DataFrame]) -> list[Condition]:
    return [c for c in conditions if c.name in pairs and not pairs[c.name].empty and "d_sae" in c.config]


def table4_rows(conditions: list[Condition], trajectories: dict[str, list[dict]],
                pairs: dict[str, pd.DataFrame]) -> list[dict]:
    out = []
    for members in _groups(_measured(conditions, pairs), SIZE_KEYS):
        if len({c.config["d_sae"] for c in members}) < 2:
            continue
        group = _group_name(members, SIZE_KEYS)
        rows = [{"group": group, **_size_row(c, trajectories[c.name], pairs[c.name])} for c in members]
        out += sorted(rows, key=lambda r: r["d_sae"])
    return out


def table4_table(rows: list[dict]) -> str:
    early = f"ratio_epoch{EARLY_EPOCH}"
    lines = ["| conditions | d_sae | d_sae/erank | seeds | " + f"epoch-{EARLY_EPOCH} ratio | final epoch | "
             "MMCS ± sd | final ratio | CE loss score |", "| :--- | " + "---: | " * 4 + "---: | :--- | ---: | ---: |"]
    lines += [f"| {r['group']} | {r['d_sae']} | {fmt(r['d_sae_over_erank'], '.1f')} | {r['n_seeds']} | "
              f"{fmt(r[early], '.2f')}× | {r['epoch']} | {r['mmcs']:.3f} ± {fmt(r['mmcs_sd'], '.3f')} | "
              f"{fmt(r['ratio'], '.2f')}× | {fmt(r['ce_loss_score'])} |" for r in rows]
    return "\n".join(lines)


def table4_figure(rows: list[dict], trajectories: dict[str, list[dict]], path: Path) -> Figure:
    """MMCS / EVT null against epoch (log), one line per dictionary size; 1 = the null."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    epochs: list[int] = []
    groups = sorted({r["group"] for r in rows})
    for i, r in enumerate(rows):
        points = [(t["epoch"], t["mmcs_x_random"]) for t in trajectories[r["condition"]]
                  if t["epoch"] >= 1 and "mmcs_x_random" in t]
        epochs += [e for e, _ in points]
        label = f"d_sae={r['d_sae']} ({fmt(r['d_sae_over_erank'], '.1f')}× erank)"
        ax.plot(*zip(*points, strict=True), marker=MARKERS[i % len(MARKERS)], ms=3,
                ls=LINESTYLES[groups.index(r["group"]) % len(LINESTYLES)],
                label=label if len(groups) == 1 else f"{r['group']}: {label}")
    ax.axhline(1.0, color="black", ls="--", lw=1, label="EVT null")
    epoch_axis(ax, epochs)
    ax.set_ylabel("MMCS ÷ EVT null (mean over seed pairs)")
    ax.set_title("Table 4: cross-seed agreement by dictionary size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    return fig


def _d_model(cond: Condition, epoch: int) -> int:
    seed = min(cond.members)
    return int(cond.members[seed].read_snapshot(seed, epoch)["decoder"].shape[1])


def table3_rows(conditions: list[Condition], trajectories: dict[str, list[dict]],
                pairs: dict[str, pd.DataFrame]) -> list[dict]:
    out = []
    for members in _groups(_measured(conditions, pairs), SIZE_KEYS + SUBJECT_KEYS):
        subjects: dict[tuple, list[Condition]] = {}
        for c in members:
            subjects.setdefault((c.config.get("model", {}).get("name"), c.config.get("layer")), []).append(c)
        if len(subjects) < 2:
            continue
        group = _group_name(members, SIZE_KEYS + SUBJECT_KEYS)
        for (model, layer), conds in subjects.items():
            sizes = [_size_row(c, trajectories[c.name], pairs[c.name]) for c in conds]
            best = max(sizes, key=lambda s: (s["ratio"], -s["d_sae"]))
            out.append({"group": group, "model": model, "layer": layer, "d_model": _d_model(conds[0], best["epoch"]),
                        "erank": best["erank"], "epoch": best["epoch"], "best_ratio": best["ratio"],
                        "best_d_sae": best["d_sae"], "d_sae_grid": " ".join(str(s["d_sae"]) for s in
                                                                           sorted(sizes, key=lambda s: s["d_sae"]))})
    return sorted(out, key=lambda r: (r["group"], str(r["model"]), r["layer"]))


def table3_table(rows: list[dict]) -> str:
    lines = ["| conditions | model | layer | d_model | erank | epoch | best ratio | at d_sae | d_sae grid |",
             "| :--- | :--- | ---: | ---: | ---: | ---: | ---: | ---: | :--- |"]
    lines += [f"| {r['group']} | {r['model']} | {r['layer']} | {r['d_model']} | {fmt(r['erank'], '.1f')} | "
              f"{r['epoch']} | {fmt(r['best_ratio'], '.2f')}× | {r['best_d_sae']} | {r['d_sae_grid']} |" for r in rows]
    return "\n".join(lines)


def lm_sections(conditions: list[Condition], trajectories: dict[str, list[dict]],
                pairs: dict[str, pd.DataFrame], out: Path) -> list[str]:
    """summary.md lines of the Table 3 / Table 4 sections that fit this sweep; writes their CSVs and figure."""
    lines = []
    rows4 = table4_rows(conditions, trajectories, pairs)
    if rows4:
        write_csv(out / "table4.csv", rows4)
        table4_figure(rows4, trajectories, out / "table4_trajectory.png")
        lines += ["## Table 4: agreement by dictionary size (ratio = mean MMCS over seed pairs ÷ EVT null; "
                  "erank = effective rank of the cached training activations; figure: table4_trajectory.png)",
                  "", table4_table(rows4), ""]
    rows3 = table3_rows(conditions, trajectories, pairs)
    if rows3:
        write_csv(out / "table3.csv", rows3)
        lines += ["## Table 3: cross-scale check (best mean-MMCS ÷ EVT-null ratio over the d_sae grid at the "
                  "final epoch, per model and layer)", "", table3_table(rows3), ""]
    return lines
