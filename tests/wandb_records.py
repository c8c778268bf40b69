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
    """Every history row (wandb.log call) as {key: value}."""
    rows = []
    for rec in records(path):
        if rec.WhichOneof("record_type") == "history":
            items = rec.history.item
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items})
    return rows
