"""The text of summary.md: header, runs not reported in full, final table, per-condition sections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sae_lab.analysis.conditions import Condition
from sae_lab.analysis.pairwise import MIN_SEEDS_FOR_VERDICT
from sae_lab.analysis.phantom import phantom_episodes
from sae_lab.analysis.runs import FAILED, RunRecord


def fmt(v: float | None, spec: str = ".4f") -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def verdict(stats: dict) -> str:
    if stats["no_verdict"]:
        return stats["no_verdict"]
    return "equivalent to the null" if stats["equivalent_to_null"] else "not shown equivalent to the null"


def _final_sentence(stats: dict) -> str:
    pairs = f"{stats['n_pairs']} pair{'s' if stats['n_pairs'] != 1 else ''}"
    text = (f"Final epoch {stats['epoch']} ({pairs}): MMCS {stats['mmcs']:.4f}, EVT null {stats['null']:.4f}, "
            f"gap {stats['gap']:+.4f}")
    if stats["no_verdict"]:
        return (f"{text}; random-pair MMCS {stats['random_mean']:.4f} ± {stats['random_sd']:.4f}; "
                f"{stats['no_verdict']}.")
    return (f"{text} [{stats['gap_ci_low']:+.4f}, {stats['gap_ci_high']:+.4f}] (seed bootstrap, 95%); "
            f"random-pair MMCS {stats['random_mean']:.4f} ± {stats['random_sd']:.4f}; "
            f"permutation p = {stats['permutation_p']:.4g}; {verdict(stats)} (margin ±{stats['margin']}).")


def _resampling_lines(cond: Condition, rows: list[dict]) -> list[str]:
    measured = [r for r in rows if "mmcs" in r]
    episodes = phantom_episodes([r["epoch"] for r in measured], [r["mmcs"] for r in measured],
                                sorted(cond.resampling_epochs))
    lines = ["", f"Resampling events at epochs {', '.join(map(str, sorted(cond.resampling_epochs)))}."]
    return lines + ([f"**Phantom consistency** after the resampling at epoch {e['event_epoch']}: MMCS rose from "
                     f"{e['before']:.4f} to {e['peak']:.4f} by epoch {e['peak_epoch']}, then decayed to "
                     f"{e['after']:.4f}." for e in episodes]
                    or ["No phantom-consistency episode (MMCS spike then decay) detected."])


def condition_table(cond: Condition, rows: list[dict], stats: dict | None, extra: list[str] | None = None) -> str:
    """The condition's section; `extra` lines (subspace tables, timescales) follow the final statistics."""
    lines = [f"### {cond.name}", "", f"Seeds: {', '.join(map(str, sorted(cond.members)))}", "",
             "| epoch | recon loss (mse) | FVU | MMCS mean [95% CI] | × random | Hungarian | live MMCS "
             "| live Hungarian | alive % | CE loss score | KL |",
             "| ---: | ---: | ---: | :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        ci = f"{fmt(r.get('mmcs'))} [{fmt(r.get('mmcs_ci_low'))}, {fmt(r.get('mmcs_ci_high'))}]" \
            if "mmcs" in r else "–"
        lines.append(f"| {r['epoch']} | {fmt(r['mse_mean'])} | {fmt(r['fvu'])} | {ci} | "
                     f"{fmt(r.get('mmcs_x_random'), '.3f')} | {fmt(r.get('hungarian_mean'))} | "
                     f"{fmt(r.get('live_mmcs'))} | {fmt(r.get('live_hungarian_mean'))} | "
                     f"{fmt(100 * r['alive_frac'], '.1f')} | {fmt(r.get('ce_loss_score'))} | "
                     f"{fmt(r.get('kl'))} |")
    if len(cond.members) < 2:
        lines += ["", "One seed: nothing to compare across seeds."]
    if stats:
        lines += ["", _final_sentence(stats)]
    lines += extra or []
    if cond.resampling_epochs:
        lines += _resampling_lines(cond, rows)
    if cond.duplicates:
        lines += ["", "Duplicate seeds ignored: " + "; ".join(cond.duplicates)]
    return "\n".join(lines)


def final_row(cond: Condition, rows: list[dict], pairs: pd.DataFrame, stats: dict) -> dict:
    """One condition at its final common epoch: MMCS mean ± sd over pairs, × random, L0 (paper Table 2)."""
    epoch = stats["epoch"]
    values = pairs.loc[pairs["epoch"] == epoch, "mmcs"].to_numpy()
    row = next(r for r in rows if r["epoch"] == epoch)
    return {"condition": cond.name, "epoch": epoch, "n_seeds": len(cond.members), "mmcs": float(values.mean()),
            "mmcs_sd": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
            "mmcs_ci_low": row.get("mmcs_ci_low", float("nan")), "mmcs_ci_high": row.get("mmcs_ci_high", float("nan")),
            "mmcs_x_random": row["mmcs_x_random"], "l0": row["l0"], "fvu": row["fvu"],
            "ce_loss_score": row.get("ce_loss_score", float("nan")),
            "alive_pct": 100 * float(row.get("alive_frac", float("nan"))), "verdict": verdict(stats)}


def final_table(finals: list[dict]) -> str:
    lines = ["| condition | epoch | seeds | MMCS ± sd | × random | L0 | FVU | CE loss score | verdict |",
             "| :--- | ---: | ---: | :--- | ---: | ---: | ---: | ---: | :--- |"]
    lines += [f"| {f['condition']} | {f['epoch']} | {f['n_seeds']} | {f['mmcs']:.3f} ± {fmt(f['mmcs_sd'], '.3f')} | "
              f"{f['mmcs_x_random']:.3f}× | {f['l0']:.1f} | {f['fvu']:.4f} | {fmt(f['ce_loss_score'])} | "
              f"{f['verdict']} |" for f in finals]
    return "\n".join(lines)


def run_status_rows(records: list[RunRecord]) -> list[dict]:
    return [{"run_dir": str(r.run.root), "status": r.status, "used": "yes" if r.usable else "no",
             "seeds": " ".join(map(str, r.seeds)), "problem": r.error or ""} for r in records]


def _status_line(row: dict) -> str:
    if row["status"] == FAILED:
        return f"- {row['run_dir']}: failed: {row['problem']}"
    used = "its other files are reported" if row["used"] == "yes" else "left out"
    return f"- {row['run_dir']}: {row['status']} ({used}): {row['problem']}"


def headline(finals: list[dict]) -> str:
    """What a sweep's terminal output ends with (report/headline.txt): per condition, the final epoch's MMCS
    [95% CI], × random, the verdict, FVU, CE loss score and alive %."""
    lines = ["Final epoch per condition (full tables: summary.md):"]
    for f in finals:
        lines.append(f"  {f['condition']} (epoch {f['epoch']}, {f['n_seeds']} seeds): MMCS {f['mmcs']:.4f} "
                     f"[{fmt(f['mmcs_ci_low'])}, {fmt(f['mmcs_ci_high'])}], {f['mmcs_x_random']:.3f}× random, "
                     f"{f['verdict']}; FVU {f['fvu']:.4f}, CE loss score {fmt(f['ce_loss_score'])}, "
                     f"alive {fmt(f['alive_pct'], '.1f')}%")
    if not finals:
        lines.append("  (no condition has two seeds with snapshots at a common epoch)")
    return "\n".join(lines)


def sources_lines(sweeps: list[Path]) -> list[str]:
    """When the runs come from more than one sweep dir, which ones were combined."""
    if len(sweeps) < 2:
        return []
    return [f"Runs combined from {len(sweeps)} sweep dirs: " + ", ".join(str(s) for s in sweeps) + ".", ""]


def header(root: Path, status: list[dict], n_conditions: int, failures: list[str]) -> list[str]:
    broken = [s for s in status if s["status"] != "ok"]
    lines = [f"# sae_lab report: {root}", "",
             f"{len(status)} run dirs, {n_conditions} condition(s), {len(broken)} broken run(s). "
             "MMCS is the mean over seed pairs with a seed-bootstrap 95% CI; × random divides by the "
             "EVT null; Hungarian is the mean matched |cos| of one-to-one decoder matching; live MMCS and "
             "live Hungarian use only the atoms that fire on the eval set at that epoch. CIs and the "
             f"equivalence verdict need at least {MIN_SEEDS_FOR_VERDICT} seeds.", ""]
    if broken:
        lines += ["## Failed, damaged or incomplete runs", ""] + [_status_line(b) for b in broken] + [""]
    if failures:
        lines += ["## Not analysed", ""] + [f"- {f}" for f in failures] + [""]
    return lines
