"""Log a finished report to one W&B summary run of its sweep (same project and group as the seeds' runs,
job_type `report`), when the sweep's runs logged to W&B.

What it logs: every table of report/ as a wandb.Table (`tables/<name>`), every figure as a wandb.Image
(`figures/<name>`), and per condition a line plot of each seed's MMCS (its mean against the other seeds,
from pairs.csv), the mean over seeds and the random-dictionary null, against the epoch
(`mmcs_vs_null/<condition>`). It only reads the files the report wrote, after they are written, so a
W&B failure costs one printed sentence and never a file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

SUMMARY_JOB_TYPE = "report"
NULL_SERIES = "null (random dictionaries)"
MEAN_SERIES = "mean over seeds"


def wandb_logger_node(configs: Iterable[dict | None]) -> dict | None:
    """The logger node of the first run that logged to W&B (its config.yaml); None when none did."""
    for config in configs:
        node = (config or {}).get("logger") or {}
        if isinstance(node, dict) and "wandb" in str(node.get("_target_", "")).lower():
            return node
    return None


def summary_group(root: Path, node: dict) -> str:
    """The runs' group: the configured one, else the sweep dir's name (what WandbSeedLogger uses)."""
    return str(node.get("group") or Path(root).resolve().name)


def report_files(out: Path, pattern: str) -> list[Path]:
    """The report's files matching `pattern`, without W&B's own files under report/wandb/."""
    return sorted(p for p in out.rglob(pattern) if "wandb" not in p.relative_to(out).parts[:1])


def _key(path: Path, out: Path) -> str:
    return path.relative_to(out).with_suffix("").as_posix()


def mmcs_series(pairs: pd.DataFrame, trajectory: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per condition, long rows (epoch, mmcs, series): each seed's mean MMCS against the other seeds,
    the mean over seeds, and the null. Long rows are what wandb.plot.line draws one line per `series` of."""
    out: dict[str, pd.DataFrame] = {}
    if pairs.empty or not {"condition", "epoch", "seed_a", "seed_b", "mmcs"} <= set(pairs.columns):
        return out
    for condition, group in pairs.groupby("condition", sort=True):
        both = pd.concat([group.rename(columns={"seed_a": "seed"})[["epoch", "seed", "mmcs"]],
                          group.rename(columns={"seed_b": "seed"})[["epoch", "seed", "mmcs"]]])
        per_seed = both.groupby(["seed", "epoch"], as_index=False)["mmcs"].mean()
        parts = [per_seed.assign(series=[f"seed {s}" for s in per_seed["seed"]])[["epoch", "mmcs", "series"]]]
        epochs = trajectory[trajectory["condition"] == condition] if "condition" in trajectory else trajectory
        if "mmcs" in epochs:
            mean = epochs[["epoch", "mmcs"]].dropna()
            parts.append(mean.assign(series=MEAN_SERIES))
        if "mmcs_null" in epochs:
            null = epochs[["epoch", "mmcs_null"]].dropna().rename(columns={"mmcs_null": "mmcs"})
            parts.append(null.assign(series=NULL_SERIES))
        out[str(condition)] = pd.concat(parts, ignore_index=True)
    return out


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError):  # no rows: nothing to table or plot
        return pd.DataFrame()


def _payload(out: Path) -> dict[str, Any]:
    import wandb

    payload: dict[str, Any] = {}
    for path in report_files(out, "*.csv"):
        frame = _read(path)
        if not frame.empty:
            payload[f"tables/{_key(path, out)}"] = wandb.Table(dataframe=frame, allow_mixed_types=True)
    for path in report_files(out, "*.png"):
        payload[f"figures/{_key(path, out)}"] = wandb.Image(str(path))
    for condition, rows in mmcs_series(_read(out / "pairs.csv"), _read(out / "trajectory.csv")).items():
        table = wandb.Table(dataframe=rows, allow_mixed_types=True)
        payload[f"mmcs_vs_null/{condition.replace('/', '_')}"] = wandb.plot.line(
            table, "epoch", "mmcs", stroke="series", title=f"{condition}: MMCS per seed vs the null")
    return payload


def log_report(root: Path, out: Path, configs: Iterable[dict | None]) -> str | None:
    """Log report/ to a summary run when the runs used logger=wandb; returns the run's name (None when
    nothing was logged). Never raises: the report's files are already written."""
    node = wandb_logger_node(configs)
    if node is None:
        return None
    group = summary_group(root, node)
    name = f"{group} report"
    try:
        where = _log(out, node, group, name)
    except Exception as err:  # noqa: BLE001 - W&B down, no login, a bad value: the files stand regardless
        first = (str(err).strip().splitlines() or [""])[0]
        print(f"The report is written to {out}, but logging it to W&B failed ({type(err).__name__}: {first}).")
        return None
    if where is not None:  # None: WANDB_MODE=disabled, nothing was logged
        print(f"W&B: the report is logged to run {name!r} (project {node.get('project')}, group {group}){where}.")
    return name


def _log(out: Path, node: dict, group: str, name: str) -> str | None:
    """Log the report; returns where the run is (", offline in DIR" or ": URL"), None for a disabled run."""
    import wandb
    from omegaconf import OmegaConf

    from sae_lab.integrations.loggers import check_login
    from sae_lab.integrations.wandb_logger import wandb_mode

    check_login(OmegaConf.create(node))  # online without a login would wait on a prompt
    run = wandb.init(project=node.get("project"), entity=node.get("entity"), dir=str(out),
                     mode=wandb_mode(bool(node.get("offline"))), group=group, job_type=SUMMARY_JOB_TYPE,
                     name=name, tags=["report", *[str(t) for t in node.get("tags") or []]],
                     config={"report_dir": str(out.resolve())}, reinit="create_new")
    where = None if run.disabled else f", offline in {Path(run.dir).parent}" if run.offline else f": {run.url}"
    failed = True
    try:
        run.log(_payload(out))
        failed = False
    finally:
        run.finish(exit_code=1 if failed else 0)
    return where
