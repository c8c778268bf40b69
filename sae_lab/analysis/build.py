"""Build report/ for a sweep dir or any dir of runs: tables (md, csv) and figures."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from sae_lab.analysis.audit import audit_condition, audit_summary, audit_table
from sae_lab.analysis.certificate_study import certificate_section
from sae_lab.analysis.coherence import coherence_section
from sae_lab.analysis.conditions import Condition, group_conditions
from sae_lab.analysis.figures import matched_cosine_histogram, recovery_plot, seed_heatmap, timescale_plot
from sae_lab.analysis.kstar import kstar_rows, kstar_table
from sae_lab.analysis.lm_tables import lm_sections
from sae_lab.analysis.pairwise import (
    final_statistics,
    matched_cosines,
    mmcs_matrix,
    random_matched_cosines,
    trajectory,
)
from sae_lab.analysis.proxy_gap import proxy_gap_section
from sae_lab.analysis.runs import load_runs, sweep_dirs
from sae_lab.analysis.subspace import subspace_tables
from sae_lab.analysis.summary import (
    condition_table,
    final_row,
    final_table,
    header,
    headline,
    run_status_rows,
    sources_lines,
)
from sae_lab.analysis.timescale import condition_timescale, timescale_line
from sae_lab.analysis.training_curve import training_loss_section
from sae_lab.analysis.wandb_summary import log_report
from sae_lab.artifacts import atomic_write_text, report_dir, write_csv


def figure_slug(name: str) -> str:
    """A condition's part of its figure file names: a readable prefix and a hash of the whole name, so two
    conditions that differ only after the prefix never write the same file."""
    readable = re.sub(r"[^A-Za-z0-9_.=-]+", "_", name)[:60] or "all"
    return f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _figures(cond: Condition, pairs: pd.DataFrame, stats: dict, out: Path) -> list[str]:
    """The seed heatmap and matched-cosine histogram of one condition at its final epoch; the summary's links."""
    epoch, seeds, slug = stats["epoch"], sorted(cond.members), figure_slug(cond.name)
    seed_heatmap(seeds, mmcs_matrix(seeds, pairs[pairs["epoch"] == epoch]), f"{cond.name}: MMCS at epoch {epoch}",
                 out / f"heatmap_{slug}.png", null=stats["null"])
    null = random_matched_cosines(stats["d_sae"], stats["d_model"])
    matched_cosine_histogram(matched_cosines(cond, epoch), null, f"{cond.name}: epoch {epoch}, "
                             f"{len(seeds)} seeds, dictionaries {stats['d_sae']} × {stats['d_model']}",
                             out / f"matched_cosine_{slug}.png")
    return ["", f"Figures: [seed × seed MMCS](heatmap_{slug}.png), [matched |cos| against random]"
                f"(matched_cosine_{slug}.png)."]


def _analyse(cond: Condition, out: Path, n_resamples: int
             ) -> tuple[list[dict], pd.DataFrame, dict | None, dict | None, list[str]]:
    rows, pairs = trajectory(cond, n_resamples=n_resamples)
    stats = timescale = None
    links: list[str] = []
    if not pairs.empty:
        stats = final_statistics(cond, pairs, int(pairs["epoch"].max()), n_resamples=n_resamples)
        try:
            timescale = condition_timescale(cond, rows, pairs, n_resamples=n_resamples)
        except Exception as err:  # noqa: BLE001 - a failed fit or bootstrap costs its sentence, not the condition
            timescale = {"failed": f"{type(err).__name__}: {err}"}
        links = _figures(cond, pairs, stats, out)
    return rows, pairs, stats, timescale, links


def _extra_lines(rows: list[dict], stats: dict | None, timescale: dict | None) -> list[str]:
    """The subspace tables and the timescale sentence of one condition's section."""
    lines = subspace_tables(rows)
    if timescale and "failed" in timescale:
        return lines + ["", f"Timescales could not be computed ({timescale['failed']})."]
    return lines + (["", timescale_line(timescale, stats["epoch"])] if timescale and stats else [])


def _audit(cond: Condition) -> tuple[dict, list[str]]:
    """The held-out audit cascade of a condition's exports: final.csv columns and summary lines."""
    try:
        pairs = audit_condition(cond.members)
    except Exception as err:  # noqa: BLE001 - e.g. the subject or its cache is not on this machine
        return {}, ["", f"Held-out audit cascade not computed ({type(err).__name__}: {err})."]
    if pairs.empty:
        return {}, ["", "Held-out audit cascade not computed: fewer than two seeds have an exported SAE."]
    summary = audit_summary(pairs)
    return summary, ["", audit_table(summary, len(pairs))]


def _pair_records(frames: list[pd.DataFrame]) -> list[dict]:
    """pairs.csv rows; shared_latent_frac exists at the final epoch only, so elsewhere its cell is left
    empty rather than written as nan."""
    if not frames:
        return []
    records = pd.concat(frames, ignore_index=True).to_dict("records")
    for record in records:
        if pd.isna(record.get("shared_latent_frac", 0.0)):
            record["shared_latent_frac"] = None
    return records


def _recovery_lines(trajectories: dict[str, list[dict]]) -> list[str]:
    """The final-epoch ground-truth table: agreement between seeds beside agreement with the truth."""
    lines = []
    for name, rows in trajectories.items():
        row = rows[-1] if rows else {}
        if "gt_hungarian_mean" not in row:
            continue
        cells = [row.get(key, float("nan")) for key in ("mmcs", "hungarian_mean", "gt_hungarian_mean",
                                                        "gt_recovered_0.9", "gt_recovered_0.99", "gt_latent_error",
                                                        "gt_cert_spearman")]
        lines.append(f"| {name} | {row['epoch']} | " + " | ".join(f"{float(c):.4f}" for c in cells) + " |")
    if not lines:
        return []
    return ["## Recovery of the true dictionary (final epoch, means over seeds; recovery.png plots it by epoch)", "",
            "| condition | epoch | MMCS across seeds | Hungarian across seeds | matched \\|cos\\| to truth | "
            "recovered > 0.9 | recovered > 0.99 | latent error | certificate–error Spearman |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", *lines, ""]


def build_report(root: str | Path, n_resamples: int = 5000, progress: bool = True) -> Path:
    """Write `root/report/` and return the path of summary.md. Failed, damaged and unfinished runs are
    listed with their reason, never fatal; a dir without run dirs raises NoRunDirsError before writing.

    The report is built in a temporary folder beside report/ and put in its place whole at the end, so
    report/ always holds exactly one report's files (none of an earlier report's that this one lacks)."""
    root = Path(root)
    records = load_runs(root)
    final = report_dir(root)
    _remove_stale_temp_folders(root)
    # host and pid: two writers (a SLURM report job and the submitter) never share a folder
    token = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    out, old = root / f".report.tmp-{token}", root / f".report.old-{token}"
    out.mkdir()
    try:
        _write_report(root, records, out, n_resamples, progress)
        _swap_in(out, final, old)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    log_report(root, final, (r.config for r in records))  # last: only reads the files above; never raises
    return final / "summary.md"


_TEMP_NAME = re.compile(r"^\.report\.(tmp|old)-(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]{6}(-\d+)?$")


def _remove_stale_temp_folders(root: Path) -> None:
    """Temporary report folders of killed writers on this host (their process is gone)."""
    for folder in [*root.glob(".report.tmp-*"), *root.glob(".report.old-*")]:
        m = _TEMP_NAME.match(folder.name)
        if m and m["host"] == socket.gethostname() and not _alive(int(m["pid"])):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return True


def _swap_in(new: Path, final: Path, old: Path, attempts: int = 5) -> None:
    """Put the folder `new` where `final` is; the previous report is moved aside first and then deleted."""
    moved = [old.with_name(f"{old.name}-{i}") for i in range(attempts)]
    for aside in moved:
        try:
            final.rename(aside)
        except FileNotFoundError:
            pass
        try:
            new.rename(final)
            break
        except OSError as err:  # another writer put its report in place between the two renames: again
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    else:
        raise OSError(errno.EEXIST, f"could not replace {final}: it keeps being written by another process")
    for aside in moved:
        shutil.rmtree(aside, ignore_errors=True)


def _write_report(root: Path, records: list, out: Path, n_resamples: int, progress: bool) -> None:
    conditions = group_conditions(records)
    sections, trajectories, epoch_rows, pair_frames, finals, failures = [], {}, [], [], [], []
    pairs_of: dict[str, pd.DataFrame] = {}  # condition -> its pair rows (the cross-condition tables)
    for cond in tqdm(conditions, desc="report", unit="condition", disable=not progress):
        try:
            rows, pairs, stats, timescale, links = _analyse(cond, out, n_resamples)
        except Exception as err:  # noqa: BLE001 - the last guard: one condition never costs the whole report
            failures.append(f"{cond.name}: could not be analysed ({type(err).__name__}: {err})")
            continue
        trajectories[cond.name] = rows
        epoch_rows += rows
        extra = links + _extra_lines(rows, stats, timescale)
        if stats:
            audit, audit_lines = _audit(cond)
            extra += audit_lines
            pair_frames.append(pairs)
            pairs_of[cond.name] = pairs
            finals.append({**final_row(cond, rows, pairs, stats),
                           **({} if timescale is None or "failed" in timescale else timescale), **audit})
        sections.append(condition_table(cond, rows, stats, extra))
    if epoch_rows:
        try:
            timescale_plot(trajectories, out / "timescale.png", {c.name: c.resampling_epochs for c in conditions})
        except Exception as err:  # noqa: BLE001 - as above: the tables still get written
            failures.append(f"timescale.png could not be drawn ({type(err).__name__}: {err})")
    truth_known = {name: rows for name, rows in trajectories.items() if any("gt_hungarian_mean" in r for r in rows)}
    if truth_known:
        try:
            recovery_plot(truth_known, out / "recovery.png")
        except Exception as err:  # noqa: BLE001 - as above
            failures.append(f"recovery.png could not be drawn ({type(err).__name__}: {err})")
    write_csv(out / "trajectory.csv", epoch_rows)
    write_csv(out / "pairs.csv", _pair_records(pair_frames))
    status = run_status_rows(records)
    write_csv(out / "runs.csv", status)
    lines = header(root, status, len(conditions), failures) + sources_lines(sweep_dirs([r.run.root for r in records]))
    if finals:
        write_csv(out / "final.csv", finals)
        lines += ["## Final epoch across conditions", "", final_table(finals), ""]
    lines += _recovery_lines(trajectories)
    kstar = kstar_rows(conditions, trajectories)
    if kstar:
        write_csv(out / "kstar.csv", kstar)
        lines += ["## k*(t): the smallest k reaching CE_rec ≥ t (final epoch, mean over seeds, linear "
                  "interpolation on the k grid)", "", kstar_table(kstar), ""]
    try:
        lines += lm_sections(conditions, trajectories, pairs_of, out)
    except Exception as err:  # noqa: BLE001 - as above: the other tables still get written
        lines += [f"Tables 3/4 could not be built ({type(err).__name__}: {err}).", ""]
    try:  # a section only when the sweep varies k across models or layers (the proxy-gap study)
        lines += proxy_gap_section(conditions, out)
    except Exception as err:  # noqa: BLE001 - as above
        lines += [f"The proxy-gap tables could not be built ({type(err).__name__}: {err}).", ""]
    try:  # a section only when a sweep with known latents varies the certificate weight λ
        lines += certificate_section(conditions, out)
    except Exception as err:  # noqa: BLE001 - as above
        lines += [f"The certificate-study table could not be built ({type(err).__name__}: {err}).", ""]
    try:
        lines += coherence_section(conditions, out)
    except Exception as err:  # noqa: BLE001 - as above
        lines += [f"The coherence table could not be built ({type(err).__name__}: {err}).", ""]
    try:
        lines += training_loss_section(conditions, out)
    except Exception as err:  # noqa: BLE001 - as above
        lines += [f"The training-loss table could not be built ({type(err).__name__}: {err}).", ""]
    summary = "\n".join(lines + ["## Conditions", ""] + ["\n\n".join(sections)]) + "\n"
    atomic_write_text(out / "summary.md", summary)
    atomic_write_text(out / "headline.txt", headline(finals) + "\n")
