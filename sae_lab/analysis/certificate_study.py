"""The self-consistency certificate study (experiment=certificate): latent recovery against λ and k.

For a sweep on a subject with known latents (model=synthetic) that varies the certificate weight λ
(`consistency.weight`), one row per condition at its final epoch with the mean and sd over seeds of each
metrics.csv column below (read, never recomputed) — certificate_study.csv — and certificate_study.png with
the latent self-consistency paper's panels: (a) latent recovery error ‖x_m − x‖₂ against λ, one line per
data sparsity k; (b) reconstruction (relative error ‖x − x̂‖/‖x‖) against λ; (c) the certificate against
λ; (d) the Spearman correlation of the per-sample certificate with the latent error at λ = 0 against k.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sae_lab.analysis.conditions import Condition
from sae_lab.analysis.figures import MARKERS, _save
from sae_lab.analysis.summary import fmt
from sae_lab.artifacts import write_csv

COLUMNS = ("gt_latent_error", "rel_error_norm", "certificate", "gt_cert_spearman")


def _weight(cond: Condition) -> float:
    return float((cond.config.get("consistency") or {}).get("weight", 0.0))


def _data_k(cond: Condition) -> int | None:
    k = (cond.config.get("model") or {}).get("k")
    return None if k is None else int(k)


def certificate_rows(conditions: list[Condition]) -> list[dict]:
    """One row per condition with known latents, sorted by (k, λ); [] unless λ takes two values or more."""
    rows = []
    for cond in conditions:
        table = cond.metrics
        if table.empty or "gt_latent_error" not in table or _data_k(cond) is None:
            continue
        epoch = int(table["epoch"].max())
        last = table[table["epoch"] == epoch]
        row = {"k": _data_k(cond), "weight": _weight(cond), "epoch": epoch, "n_seeds": int(last["seed"].nunique())}
        for column in COLUMNS:
            values = last[column].astype(float) if column in last else pd.Series(dtype=float)
            row[column] = float(values.mean()) if len(values) else float("nan")
            row[f"{column}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        rows.append({**row, "condition": cond.name})
    if len({r["weight"] for r in rows}) < 2:
        return []
    return sorted(rows, key=lambda r: (r["k"], r["weight"]))


def certificate_plot(rows: list[dict], path: Path) -> Figure:
    """The four panels (module docstring); λ on a symlog axis so that λ = 0 is shown."""
    fig = Figure(figsize=(16, 4))
    axes = fig.subplots(1, 4)
    table = pd.DataFrame(rows)
    titles = ("(a) latent error ‖x_m − x‖₂", "(b) reconstruction (relative error)", "(c) certificate")
    for ax, column, title in zip(axes[:3], COLUMNS[:3], titles, strict=True):
        for i, (k, group) in enumerate(table.groupby("k")):
            ax.errorbar(group["weight"], group[column], yerr=group[f"{column}_sd"].fillna(0), marker=MARKERS[i % 8],
                        capsize=2, label=f"k = {k}")
        positive = table["weight"][table["weight"] > 0]
        ax.set_xscale("symlog", linthresh=float(positive.min()) if len(positive) else 1.0)
        ax.set_xlabel("λ (consistency.weight)")
        ax.set_title(title)
    axes[0].legend()
    base = table[table["weight"] == 0].sort_values("k")
    axes[3].errorbar(base["k"], base["gt_cert_spearman"], yerr=base["gt_cert_spearman_sd"].fillna(0), marker="o",
                     capsize=2)
    axes[3].set_xscale("log", base=2)
    axes[3].set_xticks(base["k"].tolist(), [str(k) for k in base["k"]])
    axes[3].set_xlabel("data sparsity k")
    axes[3].set_title("(d) Spearman(certificate, latent error), λ = 0")
    fig.tight_layout()
    _save(fig, path)
    return fig


def _cell(row: dict, column: str) -> str:
    sd = row[f"{column}_sd"]
    return fmt(row[column]) + ("" if np.isnan(sd) else f" ± {fmt(sd)}")


def certificate_section(conditions: list[Condition], out: Path) -> list[str]:
    """summary.md lines of the certificate study, its CSV and figure; [] when the sweep is not one."""
    rows = certificate_rows(conditions)
    if not rows:
        return []
    write_csv(out / "certificate_study.csv", rows)
    certificate_plot(rows, out / "certificate_study.png")
    lines = ["## Certificate study: latent recovery against λ and the data's k (final epoch, mean ± sd over "
             "seeds; certificate_study.png)", "",
             "| k | λ | seeds | latent error ‖x_m − x‖₂ | relative recon error | certificate | Spearman(cert, error) |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['k']} | {r['weight']:g} | {r['n_seeds']} | " + " | ".join(_cell(r, c) for c in COLUMNS) + " |"
              for r in rows]
    return lines + [""]
