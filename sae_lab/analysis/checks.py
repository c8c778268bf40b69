"""Checks of the files a run wrote: each returns what it read, or one phrase naming the file and what is
wrong with it, so a damaged file is reported instead of stopping the report."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf
from safetensors import SafetensorError, safe_open

from sae_lab.artifacts import RunDir

# metrics.csv columns the report reads for every run (evaluation always writes them).
REQUIRED_METRICS = ("epoch", "seed", "mse_mean", "fvu", "l0", "alive_frac")
SNAPSHOT_TENSORS = ("decoder", "firing_counts")
EXPORT_TENSOR = "W_dec"


def rel(run: RunDir, path: Path) -> str:
    """`path` relative to the run dir, as the user sees it inside that dir."""
    try:
        return str(Path(path).relative_to(run.root))
    except ValueError:
        return str(path)


def read_config(run: RunDir) -> tuple[dict | None, str | None]:
    """(resolved config.yaml as a dict, None) or (None, what is wrong with it)."""
    try:
        cfg = OmegaConf.load(run.config)
    except yaml.MarkedYAMLError as err:
        where = f" at line {err.problem_mark.line + 1}" if err.problem_mark else ""
        return None, f"config.yaml is not valid YAML{where} ({err.problem or err.context})"
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        return None, f"config.yaml is not valid YAML text ({type(err).__name__})"
    if not isinstance(cfg, DictConfig):
        return None, "config.yaml is not a mapping of config keys"
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except Exception as err:  # noqa: BLE001 - any interpolation error means the same to the reader
        return None, f"config.yaml has a value that does not resolve ({type(err).__name__})"
    if not isinstance(plain.get("seed"), int):
        return None, "config.yaml has no integer seed"
    return plain, None


def _first_bad_line(rows: list[list[str]]) -> str | None:
    """A data row whose field count differs from the header's (a truncated or garbled write)."""
    width = len(rows[0])
    for number, row in enumerate(rows[1:], 2):
        if row and len(row) != width:
            return f"metrics.csv line {number} has {len(row)} fields, the header {width} (truncated or garbled)"
    return None


def read_metrics(run: RunDir) -> tuple[pd.DataFrame | None, str | None]:
    """(metrics.csv typed, None) or (None, what is wrong with it)."""
    try:
        text = run.metrics_csv.read_bytes().decode("utf-8")
        rows = list(csv.reader(io.StringIO(text)))
    except UnicodeDecodeError as err:
        return None, f"metrics.csv is not UTF-8 text (garbage byte at offset {err.start})"
    except csv.Error as err:
        return None, f"metrics.csv is not a CSV table ({err})"
    if "\x00" in text:
        return None, "metrics.csv contains NUL bytes (garbage)"
    if not rows or not rows[0]:
        return None, "metrics.csv is empty"
    missing = [c for c in REQUIRED_METRICS if c not in rows[0]]
    if missing:
        return None, f"metrics.csv lacks the column(s) {', '.join(missing)}"
    problem = _first_bad_line(rows)
    if problem:
        return None, problem
    if not any(rows[1:]):
        return None, "metrics.csv has a header but no rows"
    try:
        table = run.metrics_table()
    except (ValueError, TypeError) as err:
        return None, f"metrics.csv has a non-integer epoch, step, seed or member ({type(err).__name__})"
    text_columns = [c for c in REQUIRED_METRICS if not pd.api.types.is_numeric_dtype(table[c])]
    if text_columns:
        return None, f"metrics.csv column {text_columns[0]} has non-numeric values"
    return table, None


def read_resampling(run: RunDir) -> tuple[pd.DataFrame | None, str | None]:
    try:
        return run.resampling_table(), None
    except Exception as err:  # noqa: BLE001 - whatever broke it, the file is unreadable
        return None, f"resampling.csv is unreadable ({type(err).__name__})"


def snapshot_seeds(run: RunDir) -> tuple[list[int], str | None]:
    try:
        return run.seeds(), None
    except ValueError:
        return [], "snapshots/ holds a folder whose name is not seed<N>"


def _tensor_shapes(path: Path, names: tuple[str, ...], label: str) -> tuple[dict | None, str | None]:
    """{name: shape} from a safetensors header (the data is not read), or what is wrong with the file."""
    try:
        with safe_open(str(path), "pt") as f:
            keys = set(f.keys())
            lacking = [n for n in names if n not in keys]
            if lacking:
                return None, f"{label} lacks the tensor(s) {', '.join(lacking)}"
            return {n: list(f.get_slice(n).get_shape()) for n in names}, None
    except SafetensorError as err:
        detail = str(err).removeprefix("Error while deserializing header: ")
        return None, f"{label} is truncated or not a safetensors file ({detail})"
    except OSError as err:
        return None, f"{label} cannot be read ({err.strerror or type(err).__name__})"


def snapshot_problem(run: RunDir, seed: int, epoch: int, d_sae: int | None) -> str | None:
    label = rel(run, run.snapshot(seed, epoch))
    shapes, problem = _tensor_shapes(run.snapshot(seed, epoch), SNAPSHOT_TENSORS, label)
    if problem:
        return problem
    decoder, counts = shapes["decoder"], shapes["firing_counts"]
    if len(decoder) != 2 or counts != decoder[:1] or (d_sae is not None and decoder[0] != d_sae):
        return (f"{label} holds a decoder of shape {decoder} and firing counts of shape {counts}, "
                f"not [d_sae={d_sae}, d_model] and [d_sae]")
    return None


def readable_epochs(run: RunDir, seeds: list[int], d_sae: int | None) -> tuple[dict[int, list[int]], list[str]]:
    """seed -> the snapshot epochs that can be read, and one phrase per snapshot that cannot."""
    epochs, problems = {}, []
    for seed in seeds:
        try:
            listed = run.snapshot_epochs(seed)
        except ValueError:
            problems.append(f"{rel(run, run.snapshot_dir(seed))} holds a file not named epoch<N>.safetensors")
            listed = []
        epochs[seed] = []
        for epoch in listed:
            problem = snapshot_problem(run, seed, epoch, d_sae)
            if problem:
                problems.append(f"{problem}; epoch {epoch} of seed {seed} is left out")
            else:
                epochs[seed].append(epoch)
    return epochs, problems


def _export_cfg_problem(path: Path, label: str) -> str | None:
    if not path.is_file():
        return f"{label} is missing"
    try:
        cfg = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return f"{label} is not valid JSON ({type(err).__name__})"
    return None if isinstance(cfg, dict) else f"{label} is not a JSON object"


def export_problems(run: RunDir, seeds: list[int]) -> list[str]:
    """What is wrong in sae/seed{S}/ for each exported seed (no sae/ yet is fine: the run is unfinished).
    The report reads snapshots, not the export, so these never drop the run's numbers."""
    problems = []
    for seed in seeds:
        if not run.sae_dir(seed).is_dir():
            continue
        problems.append(_export_cfg_problem(run.sae_cfg(seed), rel(run, run.sae_cfg(seed))))
        weights, label = run.sae_weights(seed), rel(run, run.sae_weights(seed))
        problems.append(_tensor_shapes(weights, (EXPORT_TENSOR,), label)[1] if weights.is_file()
                        else f"{label} is missing")
    return [f"{p} (the export only: the report reads the snapshots)" for p in problems if p]


def error_reason(run: RunDir) -> str | None:
    """The one-sentence reason a failed job wrote to error.txt, or None when the run did not fail."""
    path = run.error_file
    if not path.is_file():
        return None
    text = path.read_bytes().decode("utf-8", errors="replace").strip()
    return text.splitlines()[0].strip() if text else "error.txt is empty"

