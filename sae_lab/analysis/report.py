"""Build report/ for a sweep dir or any dir of runs: tables (md, csv) and figures."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from sae_lab.analysis.conditions import Condition, group_conditions
from sae_lab.analysis.figures import matched_cosine_histogram, seed_heatmap, timescale_plot
from sae_lab.analysis.kstar import kstar_rows, kstar_table
from sae_lab.analysis.pairwise import final_statistics, matched_cosines, mmcs_matrix, trajectory
from sae_lab.analysis.phantom import phantom_episodes
from sae_lab.analysis.runs import RunRecord, load_runs
from sae_lab.artifacts import atomic_write_text, report_dir, write_csv


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name)[:80] or "all"


def _fmt(v, spec=".4f") -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def condition_table(cond: Condition, rows: list[dict], stats: dict | None) -> str:
    lines = [f"### {cond.name}", "", f"Seeds: {', '.join(map(str, sorted(cond.members)))}", "",
             "| epoch | recon loss (mse) | FVU | MMCS mean [95% CI] | × random | Hungarian | alive % "
             "| CE loss score | KL |",
             "| ---: | ---: | ---: | :--- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        ci = f"{_fmt(r.get('mmcs'))} [{_fmt(r.get('mmcs_ci_low'))}, {_fmt(r.get('mmcs_ci_high'))}]" \
            if "mmcs" in r else "–"
        lines.append(f"| {r['epoch']} | {_fmt(r['mse_mean'])} | {_fmt(r['fvu'])} | {ci} | "
                     f"{_fmt(r.get('mmcs_x_random'), '.3f')} | {_fmt(r.get('hungarian_mean'))} | "
                     f"{_fmt(100 * r['alive_frac'], '.1f')} | {_fmt(r.get('ce_loss_score'))} | "
                     f"{_fmt(r.get('kl'))} |")
    if stats:
        verdict = "equivalent to the null" if stats["equivalent_to_null"] else "not shown equivalent to the null"
        lines += ["", f"Final epoch {stats['epoch']} ({stats['n_pairs']} pairs): MMCS {stats['mmcs']:.4f}, "
                  f"EVT null {stats['null']:.4f}, gap {stats['gap']:+.4f} "
                  f"[{stats['gap_ci_low']:+.4f}, {stats['gap_ci_high']:+.4f}] (seed bootstrap, 95%); "
                  f"random-pair MMCS {stats['random_mean']:.4f} ± {stats['random_sd']:.4f}; "
                  f"permutation p = {stats['permutation_p']:.4g}; {verdict} "
                  f"(margin ±{stats['margin']})."]
    if cond.resampling_epochs:
        episodes = phantom_episodes([r["epoch"] for r in rows if "mmcs" in r], [r["mmcs"] for r in rows if "mmcs" in r],
                                    sorted(cond.resampling_epochs))
        lines += ["", f"Resampling events at epochs {', '.join(map(str, sorted(cond.resampling_epochs)))}."]
        lines += [f"**Phantom consistency** after the resampling at epoch {e['event_epoch']}: MMCS rose from "
                  f"{e['before']:.4f} to {e['peak']:.4f} by epoch {e['peak_epoch']}, then decayed to {e['after']:.4f}."
                  for e in episodes] or ["No phantom-consistency episode (MMCS spike then decay) detected."]
    if cond.duplicates:
        lines += ["", "Duplicate seeds ignored: " + "; ".join(cond.duplicates)]
    return "\n".join(lines)


def final_row(cond: Condition, rows: list[dict], pairs: pd.DataFrame, epoch: int) -> dict:
    """One condition at its final common epoch: MMCS mean ± sd over pairs, × random, L0 (paper Table 2)."""
    values = pairs.loc[pairs["epoch"] == epoch, "mmcs"].to_numpy()
    row = next(r for r in rows if r["epoch"] == epoch)
    return {"condition": cond.name, "epoch": epoch, "n_seeds": len(cond.members), "mmcs": float(values.mean()),
            "mmcs_sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0, "mmcs_x_random": row["mmcs_x_random"],
            "l0": row["l0"], "fvu": row["fvu"], "ce_loss_score": row.get("ce_loss_score", float("nan"))}


def final_table(finals: list[dict]) -> str:
    lines = ["| condition | epoch | seeds | MMCS ± sd | × random | L0 | FVU | CE loss score |",
             "| :--- | ---: | ---: | :--- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {f['condition']} | {f['epoch']} | {f['n_seeds']} | {f['mmcs']:.3f} ± {f['mmcs_sd']:.3f} | "
              f"{f['mmcs_x_random']:.3f}× | {f['l0']:.1f} | {f['fvu']:.4f} | {_fmt(f['ce_loss_score'])} |"
              for f in finals]
    return "\n".join(lines)


def run_status_rows(records: list[RunRecord]) -> list[dict]:
    return [{"run_dir": str(r.run.root), "status": "ok" if r.ok else "broken", "seeds": " ".join(map(str, r.seeds)),
             "problem": r.error or ""} for r in records]


def build_report(root: str | Path, n_resamples: int = 5000, progress: bool = True) -> Path:
    """Write `root/report/` and return the path of summary.md. Broken runs are listed, not fatal."""
    root = Path(root)
    out = report_dir(root)
    records = load_runs(root)
    conditions = group_conditions(records)
    sections, trajectories, epoch_rows, pair_frames, finals = [], {}, [], [], []
    for cond in tqdm(conditions, desc="report", unit="condition", disable=not progress):
        rows, pairs = trajectory(cond, n_resamples=n_resamples)
        trajectories[cond.name] = rows
        epoch_rows += rows
        stats = None
        if not pairs.empty:
            pair_frames.append(pairs)
            final = int(pairs["epoch"].max())
            stats = final_statistics(cond, pairs, final, n_resamples=n_resamples)
            finals.append(final_row(cond, rows, pairs, final))
            seeds = sorted(cond.members)
            matrix = mmcs_matrix(seeds, pairs[pairs["epoch"] == final])
            slug = _slug(cond.name)
            seed_heatmap(seeds, matrix, f"{cond.name}: MMCS at epoch {final}", out / f"heatmap_{slug}.png")
            matched_cosine_histogram(matched_cosines(cond, final), f"{cond.name}: epoch {final}",
                                     out / f"matched_cosine_{slug}.png")
        sections.append(condition_table(cond, rows, stats))
    if epoch_rows:
        timescale_plot(trajectories, out / "timescale.png", {c.name: c.resampling_epochs for c in conditions})
    write_csv(out / "trajectory.csv", epoch_rows)
    write_csv(out / "pairs.csv", pd.concat(pair_frames, ignore_index=True) if pair_frames else [])
    status = run_status_rows(records)
    write_csv(out / "runs.csv", status)
    broken = [s for s in status if s["status"] != "ok"]
    header = [f"# sae_lab report: {root}", "",
              f"{len(records)} run dirs, {len(conditions)} condition(s), {len(broken)} broken run(s). "
              "MMCS is the mean over seed pairs with a seed-bootstrap 95% CI; × random divides by the "
              "EVT null; Hungarian is the mean matched |cos| of one-to-one decoder matching.", ""]
    if broken:
        header += ["## Broken or missing runs", ""] + [f"- {b['run_dir']}: {b['problem']}" for b in broken] + [""]
    if finals:
        write_csv(out / "final.csv", finals)
        header += ["## Final epoch across conditions", "", final_table(finals), ""]
    kstar = kstar_rows(conditions, trajectories)
    if kstar:
        write_csv(out / "kstar.csv", kstar)
        header += ["## k*(t): the smallest k reaching CE_rec ≥ t (final epoch, mean over seeds, linear "
                   "interpolation on the k grid)", "", kstar_table(kstar), ""]
    summary = "\n".join(header + ["## Conditions", ""] + ["\n\n".join(sections)]) + "\n"
    atomic_write_text(out / "summary.md", summary)
    return out / "summary.md"
