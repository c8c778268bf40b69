"""The report on a hand-built dir of runs: two conditions, one broken run, known decoders."""

import csv

import numpy as np
import pytest
import torch
import yaml

from sae_lab.analysis import build_report, group_conditions, load_runs
from sae_lab.analysis.build import figure_slug
from sae_lab.artifacts import RunDir, atomic_save_tensors, write_csv
from sae_lab.cli.report import main as report_main
from sae_lab.metrics import evt_null

EYE = torch.eye(4)
HADAMARD = torch.tensor([[1.0, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2


def _make_run(root, name, lr, seed, decoders, metrics=True):
    run = RunDir(root / name)
    run.root.mkdir(parents=True)
    cfg = {"sae": {"architecture": "topk"}, "d_sae": 4, "lr": lr, "seed": seed, "progress": False}
    run.config.write_text(yaml.safe_dump(cfg))
    if not metrics:
        return run
    rows = []
    for epoch, decoder in decoders.items():
        atomic_save_tensors(run.snapshot(seed, epoch), {"decoder": decoder, "firing_counts": torch.ones(4)})
        rows.append({"epoch": epoch, "step": 10 * epoch, "seed": seed, "member": 0, "mse_mean": 1.0 / (1 + epoch),
                     "fvu": 0.5, "l0": 2.0, "alive_frac": 1.0})
    write_csv(run.metrics_csv, rows)
    return run


@pytest.fixture
def runs_dir(tmp_path):
    _make_run(tmp_path, "a1", 0.001, 1, {0: EYE, 1: EYE})
    _make_run(tmp_path, "a2", 0.001, 2, {0: EYE[[1, 0, 3, 2]], 1: -EYE})
    _make_run(tmp_path, "a3", 0.001, 3, {0: HADAMARD, 1: EYE})
    _make_run(tmp_path, "b1", 0.002, 1, {0: EYE, 1: EYE})
    _make_run(tmp_path, "b2", 0.002, 2, {0: HADAMARD, 1: HADAMARD})
    _make_run(tmp_path, "b3_broken", 0.002, 3, {}, metrics=False)
    return tmp_path


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_grouping(runs_dir):
    records = load_runs(runs_dir)
    assert len(records) == 6
    assert [r.run.root.name for r in records if not r.ok] == ["b3_broken"]
    conds = group_conditions(records)
    assert [c.name for c in conds] == ["lr=0.001", "lr=0.002"]
    assert sorted(conds[0].members) == [1, 2, 3] and sorted(conds[1].members) == [1, 2]


def test_report_values(runs_dir):
    summary = build_report(runs_dir, n_resamples=500, progress=False)
    report = summary.parent
    pairs = _read(report / "pairs.csv")
    got = {(r["condition"], int(r["epoch"]), int(r["seed_a"]), int(r["seed_b"])): float(r["mmcs"]) for r in pairs}
    # permutations and sign flips of the identity agree perfectly; identity vs Hadamard rows: |cos| = 1/2
    assert got[("lr=0.001", 0, 1, 2)] == pytest.approx(1.0)
    assert got[("lr=0.001", 0, 1, 3)] == pytest.approx(0.5)
    assert got[("lr=0.001", 0, 2, 3)] == pytest.approx(0.5)
    assert got[("lr=0.001", 1, 1, 3)] == pytest.approx(1.0)
    assert got[("lr=0.002", 1, 1, 2)] == pytest.approx(0.5)
    assert len(pairs) == 3 * 2 + 1 * 2
    hung = {(r["condition"], int(r["epoch"]), int(r["seed_a"]), int(r["seed_b"])): float(r["hungarian_mean"])
            for r in pairs}
    assert hung[("lr=0.001", 0, 1, 3)] == pytest.approx(0.5)
    traj = {(r["condition"], int(r["epoch"])): r for r in _read(report / "trajectory.csv")}
    assert float(traj[("lr=0.001", 0)]["mmcs"]) == pytest.approx(2 / 3)
    assert float(traj[("lr=0.001", 1)]["mmcs"]) == pytest.approx(1.0)
    assert float(traj[("lr=0.001", 0)]["mmcs_null"]) == pytest.approx(evt_null(4, 4))
    assert float(traj[("lr=0.001", 1)]["mse_mean"]) == pytest.approx(0.5)
    runs = {r["run_dir"].rsplit("/", 1)[-1]: r for r in _read(report / "runs.csv")}
    assert runs["b3_broken"]["status"] == "not evaluated" and "no metrics.csv" in runs["b3_broken"]["problem"]
    text = summary.read_text()
    assert "1 broken run(s)" in text and "b3_broken" in text
    assert "### lr=0.001" in text and "### lr=0.002" in text
    for name in ("timescale.png", f"heatmap_{figure_slug('lr=0.001')}.png",
                 f"matched_cosine_{figure_slug('lr=0.002')}.png"):
        assert (report / name).stat().st_size > 1000


def test_cli(runs_dir, capsys):
    assert report_main([str(runs_dir), "--resamples", "200"]) == 0
    assert "Report written to" in capsys.readouterr().out
    assert report_main([str(runs_dir / "nope")]) == 2


def test_final_statistics_gap_is_mmcs_minus_null(runs_dir):
    build_report(runs_dir, n_resamples=300, progress=False)
    text = (runs_dir / "report" / "summary.md").read_text()
    null = evt_null(4, 4)
    assert f"gap {1.0 - null:+.4f}" in text  # lr=0.001 at epoch 1: every pair has MMCS 1
    assert np.isfinite(null)


def test_coherence_table_and_histogram(tmp_path):
    # atoms e0, e1, (e0 + e1)/√2, e3: per-atom coherence 1/√2, 1/√2, 1/√2, 0; the off-diagonal cosine 1/√2
    # four times, so RMS = sqrt(4 · ½ / 16)
    coherent = torch.stack([EYE[0], EYE[1], (EYE[0] + EYE[1]) / 2 ** 0.5, EYE[3]])
    _make_run(tmp_path, "c1", 0.003, 1, {0: EYE, 1: coherent})
    _make_run(tmp_path, "c2", 0.003, 2, {0: EYE, 1: coherent[[3, 2, 1, 0]]})
    _make_run(tmp_path, "d1", 0.004, 1, {0: coherent, 1: HADAMARD})
    summary = build_report(tmp_path, n_resamples=200, progress=False)
    rows = {r["condition"]: r for r in _read(summary.parent / "coherence.csv")}
    c = rows["lr=0.003"]
    assert (int(c["epoch"]), int(c["n_seeds"]), int(c["n_atoms"])) == (1, 2, 8)
    assert float(c["mean"]) == pytest.approx(3 / (4 * 2 ** 0.5))
    assert float(c["median"]) == pytest.approx(2 ** -0.5)
    assert (float(c["above_0.5"]), float(c["above_0.9"])) == (0.75, 0.0)
    assert float(c["rms"]) == pytest.approx((4 * 0.5 / 16) ** 0.5)
    assert float(rows["lr=0.004"]["mean"]) == pytest.approx(0.0, abs=1e-7)  # Hadamard rows are orthogonal
    assert (summary.parent / "coherence.png").stat().st_size > 1000
    assert "## Coherence of the final dictionaries" in summary.read_text()
