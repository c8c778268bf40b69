"""The training loss after each update, as the runs logged it (Lightning's CSV log, `train/loss`): for DB-KSVD the mean
relative error ‖y − Dx‖/‖y‖ on the training batch after each iteration (the DB-KSVD paper's Figure 3), for the
SAEs their training objective. Eval metrics (metrics.csv) are on held-out data; this is the fit itself.

training_loss.csv: condition, updates, train_loss (the loss after that many updates, i.e. Lightning's logged step
+ 1; mean over the condition's runs where all of them logged it); training_loss.png: one line per condition;
summary.md: first and last logged value and the first update count whose loss is within 1% of the last.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from sae_lab.analysis.conditions import Condition
from sae_lab.analysis.figures import LINESTYLES, _save
from sae_lab.artifacts import write_csv

WITHIN = 0.01  # "reached its final loss": the first logged update within 1% of the last logged value


def condition_training_loss(cond: Condition) -> pd.DataFrame:
    """[updates, train_loss]: the mean over the condition's runs (an ensemble run holds several seeds and logs
    their mean once) after each number of updates every run logged; empty when a run logged none."""
    runs = {run.root: run for run in cond.members.values()}
    curves = [run.training_loss().set_index("step")["train_loss"] for run in runs.values()]
    if not curves or any(c.empty for c in curves):
        return pd.DataFrame({"updates": pd.Series(dtype="int64"), "train_loss": pd.Series(dtype="float64")})
    table = pd.concat(curves, axis=1, join="inner")
    updates = table.index.to_numpy(dtype="int64") + 1
    return pd.DataFrame({"updates": updates, "train_loss": table.mean(axis=1).to_numpy()})


def reach_updates(curve: pd.DataFrame, within: float = WITHIN) -> int:
    """The first logged update count whose loss is at most (1 + within) × the last logged loss."""
    last = curve["train_loss"].iloc[-1]
    return int(curve.loc[curve["train_loss"] <= last * (1 + within), "updates"].iloc[0])


def training_loss_plot(curves: dict[str, pd.DataFrame], path: Path) -> Figure:
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for i, (name, curve) in enumerate(curves.items()):
        ax.plot(curve["updates"], curve["train_loss"], ls=LINESTYLES[i // 10 % len(LINESTYLES)], color=f"C{i % 10}",
                lw=1.5, label=name)
    ax.set_xlabel("updates (DB-KSVD: iterations; SAEs: optimiser steps)")
    ax.set_ylabel("train/loss as logged\n(DB-KSVD: mean relative error on the training batch)")
    ax.set_title("Training loss after each update (mean over each condition's runs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    _save(fig, path)
    return fig


def training_loss_section(conditions: list[Condition], out: Path) -> list[str]:
    """training_loss.csv / .png and a summary table; nothing when no run logged train/loss twice."""
    curves = {c.name: curve for c in conditions if len(curve := condition_training_loss(c)) >= 2}
    if not curves:
        return []
    write_csv(out / "training_loss.csv", pd.concat(curve.assign(condition=name)[["condition", "updates", "train_loss"]]
                                                   for name, curve in curves.items()))
    training_loss_plot(curves, out / "training_loss.png")
    rows = [f"| {name} | {len(c)} | {c['train_loss'].iloc[0]:.4g} (after {c['updates'].iloc[0]}) | "
            f"{c['train_loss'].iloc[-1]:.4g} (after {c['updates'].iloc[-1]}) | {reach_updates(c)} |"
            for name, c in curves.items()]
    return ["## Training loss by update (train/loss as logged; DB-KSVD: mean relative error on the training batch "
            "after each iteration; training_loss.png)", "",
            f"| condition | updates logged | first | last | first update count within {WITHIN:.0%} of the last |",
            "| --- | ---: | ---: | ---: | ---: |", *rows, ""]
