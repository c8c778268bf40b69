"""Read an offline W&B run's .wandb file (the LevelDB-style log wandb writes; its Python reader left the
package when wandb moved to its Go core): header ':W&B' + magic + version, then 32 KiB blocks of records
(crc32, length, type: full / first / middle / last), each a wandb_internal_pb2.Record."""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32 * 1024
HEADER = struct.Struct("<4sHB")
RECORD = struct.Struct("<IHB")
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    ident, _, _ = HEADER.unpack_from(data)
    assert ident == b":W&B", f"{path} is not a W&B run file"
    out, pos, pending = [], HEADER.size, b""
    while pos + RECORD.size <= len(data):
        room = BLOCK - pos % BLOCK
        if room < RECORD.size:  # the tail of a block too short for a header is padding
            pos += room
            continue
        _, length, kind = RECORD.unpack_from(data, pos)
        if kind == 0 and length == 0:
            pos += room
            continue
        chunk = data[pos + RECORD.size:pos + RECORD.size + length]
        pos += RECORD.size + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            rec = pb.Record()
            rec.ParseFromString(pending)
            out.append(rec)
    return out


def run_config(path: Path) -> dict:
    """The run's config as W&B stored it: every config update in order, later keys winning."""
    config = {}
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        items = rec.config.update if kind == "config" else rec.run.config.update if kind == "run" else []
        config.update({item.key: json.loads(item.value_json) for item in items})
    return config


def history(path: Path) -> list[dict]:
    """Every history row (wandb.log call) as {key: value}. wandb stores a logged object (a Table, an
    Image) as one item per field under nested_key [key, field, ...]; they are put back into one dict."""
    rows = []
    for rec in records(path):
        if rec.WhichOneof("record_type") != "history":
            continue
        row: dict = {}
        for item in rec.history.item:
            keys = [item.key] if item.key else list(item.nested_key)
            node = row
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = json.loads(item.value_json)
        rows.append(row)
    return rows


def offline_runs(root: Path) -> list[Path]:
    """Every offline run's .wandb file under `root` (wandb writes <dir>/wandb/offline-run-*/run-*.wandb)."""
    return sorted(Path(root).rglob("offline-run-*/run-*.wandb"))


def run_info(path: Path) -> dict:
    """The run record's name, group, job type and tags (the first run record; later ones only update)."""
    for rec in records(path):
        if rec.WhichOneof("record_type") == "run":
            run = rec.run
            return {"name": run.display_name, "group": run.run_group, "job_type": run.job_type,
                    "tags": list(run.tags)}
    raise AssertionError(f"{path} holds no run record")


def logged_table(path: Path, key: str):
    """The wandb.Table logged under `key`, as a DataFrame read from the run's files/ (the history row
    holds only a reference to the table's JSON file)."""
    import pandas as pd

    refs = [row[key] for row in history(path) if key in row]
    assert refs, f"{path} logged no {key}"
    ref = refs[-1]
    assert ref.get("_type") == "table-file", ref
    table = json.loads((Path(path).parent / "files" / ref["path"]).read_text())
    return pd.DataFrame(table["data"], columns=table["columns"])
