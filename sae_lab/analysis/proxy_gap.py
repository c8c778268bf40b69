"""The proxy-gap tables: does reconstruction (R²) track behaviour (CE_rec) across models and depths?

For each group of conditions that differ in k and in the subject (model, layer or depth label):
- proxy_gap.csv: per condition at its final epoch, R², cosine, relative error, MSE, SSE/token, SST/token,
  CE_rec [95% CI], alive %, rate proxy, L0: metrics.csv columns averaged over seeds, never recomputed;
- proxy_gap_delta.csv: per depth and k, each pair of models (larger d_model minus smaller): ΔR², ΔCE_rec;
- proxy_gap_corr.csv: per depth, Pearson's r of R² with CE_rec pooled over k and models, and within fixed k
  (both demeaned by their k's mean, then correlated, as the proxy-gap log does);
- proxy_gap_kstar.csv: per depth and model, k*(t) for t = 0.85, 0.90 and its ratio to the smallest model's.
A depth is the run's `depth` label (experiment=proxy_gap) or, without one, its layer ("layer 1"), so two
subjects of one shape pair layer by layer.
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors import safe_open

from sae_lab.analysis.conditions import Condition
from sae_lab.analysis.kstar import TARGETS, kstar_of
from sae_lab.analysis.pairwise import skipna_mean
from sae_lab.analysis.summary import fmt
from sae_lab.artifacts import write_csv

SUBJECT_KEYS = ("k", "model", "layer", "depth", "d_sae")  # d_sae follows d_model (d_sae_over_d_model)
DEPTH_ORDER = ("early", "mid", "late")
# metrics.csv column -> proxy_gap.csv column; alive_frac becomes a percentage below
COLUMNS = {"r2": "r2", "cos_sim": "cos_sim", "rel_error_norm": "rel_error_norm", "mse_mean": "mse_mean",
           "sse_per_token": "sse_per_token", "sst_per_token": "sst_per_token", "ce_rec": "ce_rec",
           "ce_rec_ci_low": "ce_rec_ci_low", "ce_rec_ci_high": "ce_rec_ci_high", "alive_frac": "alive_pct",
           "rate_proxy": "rate_proxy", "l0": "l0"}
CI_COLUMNS = ("ce_rec_ci_low", "ce_rec_ci_high")


def depth_of(config: dict) -> str:
    return str(config["depth"]) if config.get("depth") is not None else f"layer {config.get('layer')}"


def _d_model(cond: Condition, epoch: int) -> int | None:
    """The decoder's width from its snapshot header (no tensor is read)."""
    for seed, run in sorted(cond.members.items()):
        path = run.snapshot(seed, epoch)
        if path.is_file():
            with safe_open(str(path), "pt") as f:
                return int(f.get_slice("decoder").get_shape()[1])
    return None


def condition_row(cond: Condition) -> dict | None:
    """The condition's final-epoch values: the mean over seeds of each metrics.csv column; the CE_rec CI is a
    run's bootstrap over sequences, so it is given for a single seed only."""
    table = cond.metrics
    if table.empty or "r2" not in table:
        return None
    epoch = int(table["epoch"].max())
    last = table[table["epoch"] == epoch]
    n_seeds = int(last["seed"].nunique())
    row = {"depth": depth_of(cond.config), "model": str(cond.config.get("model", {}).get("name")),
           "layer": cond.config.get("layer"), "d_model": _d_model(cond, epoch), "d_sae": cond.config.get("d_sae"),
           "k": int(cond.config["k"]), "n_seeds": n_seeds, "epoch": epoch}
    for source, name in COLUMNS.items():
        value = skipna_mean(last[source]) if source in last else float("nan")
        if source in CI_COLUMNS and n_seeds != 1:
            value = float("nan")
        row[name] = 100.0 * value if source == "alive_frac" else value
    return {**row, "condition": cond.name}


def _group_name(members: list[Condition]) -> str:
    parts = [p for p in members[0].name.split(", ") if not p.split("=")[0].startswith(SUBJECT_KEYS)]
    return ", ".join(parts) or "all runs"


def _depth_key(depth: str) -> tuple:
    return (DEPTH_ORDER.index(depth), 0, depth) if depth in DEPTH_ORDER else (len(DEPTH_ORDER), len(depth), depth)


def _model_key(row: dict) -> tuple:
    return (row["d_model"] if row["d_model"] is not None else -1, row["model"])


def proxy_gap_rows(conditions: list[Condition]) -> list[dict]:
    """proxy_gap.csv: one row per condition of every group that varies k across subjects."""
    groups: dict[str, list[Condition]] = {}
    for cond in conditions:
        if "k" in cond.config:
            key = json.dumps({k: v for k, v in cond.config.items() if k not in SUBJECT_KEYS}, sort_keys=True,
                             default=str)
            groups.setdefault(key, []).append(cond)
    out = []
    for members in groups.values():
        rows = [r for r in map(condition_row, members) if r is not None]
        if len({r["k"] for r in rows}) < 2 or len({(r["model"], r["layer"]) for r in rows}) < 2:
            continue
        group = _group_name(members)
        out += [{"group": group, **r} for r in rows]
    return sorted(out, key=lambda r: (r["group"], _depth_key(r["depth"]), r["k"], _model_key(r)))


def _by_depth(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        out.setdefault((r["group"], r["depth"]), []).append(r)
    return out


def delta_rows(rows: list[dict]) -> list[dict]:
    """Per depth and k, each pair of models at it: the larger (by d_model) minus the smaller."""
    out = []
    for (group, depth), at in _by_depth(rows).items():
        for k in sorted({r["k"] for r in at}):
            models = sorted((r for r in at if r["k"] == k), key=_model_key)
            for a, b in combinations(models, 2):
                d_r2, d_ce = b["r2"] - a["r2"], b["ce_rec"] - a["ce_rec"]
                out.append({"group": group, "depth": depth, "k": k, "model_a": a["model"], "model_b": b["model"],
                            "r2_a": a["r2"], "r2_b": b["r2"], "delta_r2": d_r2, "ce_rec_a": a["ce_rec"],
                            "ce_rec_b": b["ce_rec"], "delta_ce_rec": d_ce,
                            "proxy_gap": bool(d_r2 > 0 and d_ce < 0)})  # R² better, behaviour worse
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r; NaN for fewer than 3 points or a constant side (no correlation to speak of)."""
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def correlation_rows(rows: list[dict]) -> list[dict]:
    """Per depth: r(R², CE_rec) pooling k and models, and within fixed k (each demeaned by its k's mean)."""
    out = []
    for (group, depth), at in _by_depth(rows).items():
        frame = pd.DataFrame(at)[["k", "r2", "ce_rec"]].dropna()
        within = frame[["r2", "ce_rec"]] - frame.groupby("k")[["r2", "ce_rec"]].transform("mean")
        out.append({"group": group, "depth": depth, "n_points": len(frame), "n_models": len({r["model"] for r in at}),
                    "r_pooled": _pearson(frame["r2"].to_numpy(), frame["ce_rec"].to_numpy()),
                    "r_within_k": _pearson(within["r2"].to_numpy(), within["ce_rec"].to_numpy())})
    return out


def kstar_rows(rows: list[dict], targets: tuple[float, ...] = TARGETS) -> list[dict]:
    """Per depth and model, k*(t) on its k grid and its ratio to the smallest model's k*(t) at that depth."""
    out = []
    for (group, depth), at in _by_depth(rows).items():
        models: dict[str, list[dict]] = {}
        for r in sorted(at, key=_model_key):
            models.setdefault(r["model"], []).append(r)
        stars = {m: kstar_of([r["k"] for r in rs], [r["ce_rec"] for r in rs], targets) for m, rs in models.items()}
        base = next(iter(models))
        for t in targets:
            for model, rs in models.items():
                k, k0 = stars[model][t], stars[base][t]
                out.append({"group": group, "depth": depth, "target": t, "model": model, "d_model": rs[0]["d_model"],
                            "k_star": k, "ratio_to": base,
                            "ratio": k / k0 if k is not None and k0 else float("nan"),
                            "k_grid": " ".join(str(r["k"]) for r in sorted(rs, key=lambda r: r["k"]))})
    return out


def _ci(r: dict) -> str:
    if np.isnan(r["ce_rec_ci_low"]):
        return fmt(r["ce_rec"], ".3f")
    return f"{r['ce_rec']:.3f} [{r['ce_rec_ci_low']:.3f}, {r['ce_rec_ci_high']:.3f}]"


def _tables(rows: list[dict], deltas: list[dict], corr: list[dict], stars: list[dict]) -> list[str]:
    many = len({r["group"] for r in rows}) > 1
    g = (lambda r: f"{r['group']} | ") if many else (lambda r: "")
    head = "| conditions " if many else ""
    lines = [head + "| depth | model | layer | d_model | k | seeds | R² | cosine | rel. error | SSE/token | "
             "SST/token | CE_rec [95% CI] | alive % | rate (bits/token) |",
             ("| :--- " if many else "") + "| :--- | :--- | " + "---: | " * 9 + ":--- | ---: | ---: |"]
    lines += [f"| {g(r)}{r['depth']} | {r['model']} | {r['layer']} | {r['d_model']} | {r['k']} | {r['n_seeds']} | "
              f"{fmt(r['r2'])} | {fmt(r['cos_sim'])} | {fmt(r['rel_error_norm'])} | {fmt(r['sse_per_token'], '.4g')} | "
              f"{fmt(r['sst_per_token'], '.4g')} | {_ci(r)} | {fmt(r['alive_pct'], '.1f')} | "
              f"{fmt(r['rate_proxy'], '.1f')} |" for r in rows]
    lines += ["", "ΔR² and ΔCE_rec between models at each k (model b minus model a, b the larger d_model); "
              "\"proxy gap\": R² better while CE_rec is worse.", "",
              head + "| depth | k | model a | model b | ΔR² | ΔCE_rec | proxy gap |",
              ("| :--- " if many else "") + "| :--- | ---: | :--- | :--- | ---: | ---: | :--- |"]
    lines += [f"| {g(d)}{d['depth']} | {d['k']} | {d['model_a']} | {d['model_b']} | {d['delta_r2']:+.4f} | "
              f"{d['delta_ce_rec']:+.4f} | {'yes' if d['proxy_gap'] else 'no'} |" for d in deltas]
    lines += ["", "Pearson's r of R² with CE_rec per depth: pooling k and models, and within fixed k (both "
              "demeaned by their k's mean; with two models, a sign diagnostic rather than a stable statistic).", "",
              head + "| depth | points | models | r pooled | r within k |",
              ("| :--- " if many else "") + "| :--- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {g(c)}{c['depth']} | {c['n_points']} | {c['n_models']} | {fmt(c['r_pooled'], '+.3f')} | "
              f"{fmt(c['r_within_k'], '+.3f')} |" for c in corr]
    lines += ["", "k*(t): the smallest k with CE_rec ≥ t (linear interpolation on the k grid); ratio: k*(t) over "
              "that of the depth's smallest model.", "",
              head + "| depth | t | model | k*(t) | ratio | k grid |",
              ("| :--- " if many else "") + "| :--- | ---: | :--- | ---: | ---: | :--- |"]
    lines += [f"| {g(s)}{s['depth']} | {s['target']:.2f} | {s['model']} | "
              f"{'not reached' if s['k_star'] is None else format(s['k_star'], '.1f')} | {fmt(s['ratio'], '.2f')} | "
              f"{s['k_grid']} |" for s in stars]
    return lines


def proxy_gap_section(conditions: list[Condition], out: Path) -> list[str]:
    """summary.md lines of the proxy-gap section, and its CSVs; [] when no group varies k across subjects."""
    rows = proxy_gap_rows(conditions)
    if not rows:
        return []
    deltas, corr, stars = delta_rows(rows), correlation_rows(rows), kstar_rows(rows)
    for name, table in (("proxy_gap", rows), ("proxy_gap_delta", deltas), ("proxy_gap_corr", corr),
                        ("proxy_gap_kstar", stars)):
        write_csv(out / f"{name}.csv", table)
    return ["## Proxy gap: reconstruction against behaviour across models and depths (final epoch, means over "
            "seeds; CE_rec = 2 − L_recon/L_orig with its 95% bootstrap CI over sequences when there is one seed)",
            "", *_tables(rows, deltas, corr, stars), ""]
