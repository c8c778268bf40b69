"""atomic_write: umask-derived mode, nothing left behind on failure, typed metrics tables."""

import os

import pytest
import torch

from sae_lab import artifacts
from sae_lab.artifacts import (
    RunDir,
    atomic_save_tensors,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    write_csv,
)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_written_file_gets_the_umask_mode(tmp_path, umask_022):
    atomic_write_text(tmp_path / "a.txt", "hello")
    atomic_save_tensors(tmp_path / "t.safetensors", {"x": torch.ones(2)})
    for name in ("a.txt", "t.safetensors"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "a.txt").read_text() == "hello"


def test_mode_follows_a_group_umask(tmp_path):
    old = os.umask(0o002)
    try:
        atomic_write_bytes(tmp_path / "shared.bin", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "shared.bin").stat().st_mode & 0o777 == 0o664


def test_umask_without_proc_is_read_and_restored(tmp_path, umask_022, monkeypatch):
    monkeypatch.setattr(artifacts, "_PROC_STATUS", tmp_path / "no-such-file")
    atomic_write_text(tmp_path / "a.txt", "x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert os.umask(0o022) == 0o022  # still the caller's umask


def _failing_writer(tmp):
    tmp.write_bytes(b"half a file")
    raise RuntimeError("disk full")


def test_failed_write_leaves_no_target_and_no_temp(tmp_path):
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "out" / "f.bin", _failing_writer)
    assert list((tmp_path / "out").iterdir()) == []


def test_failed_write_keeps_the_existing_file(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")
    before = target.stat()
    with pytest.raises(RuntimeError):
        atomic_write(target, _failing_writer)
    assert target.read_text() == "old" and target.stat().st_ino == before.st_ino
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_metrics_and_resampling_tables_are_typed(tmp_path):
    run = RunDir(tmp_path)
    write_csv(run.metrics_csv, [{"epoch": 0, "step": 0, "seed": 3, "member": 0, "mse_mean": 0.1},
                                {"epoch": 1, "step": 10, "seed": 3, "member": 0, "mse_mean": 0.05, "mmcs": 0.4}])
    table = run.metrics_table()
    assert {c: str(table[c].dtype) for c in ("epoch", "step", "seed", "member")} == dict.fromkeys(
        ("epoch", "step", "seed", "member"), "int64")
    assert table["mse_mean"].tolist() == [0.1, 0.05] and table["mmcs"].isna().tolist() == [True, False]
    assert [int(r["epoch"]) for r in run.read_metrics()] == [0, 1]  # the raw rows still read
    empty = run.resampling_table()
    assert empty.empty and str(empty["n_resampled"].dtype) == "int64"
    write_csv(run.resampling_csv, [{"epoch": 4, "step": 40, "seed": 3, "pool": "shared", "n_resampled": 7,
                                    "n_features": 16}])
    events = run.resampling_table()
    assert events["n_resampled"].tolist() == [7] and str(events["epoch"].dtype) == "int64"
