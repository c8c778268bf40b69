"""Tables 3 and 4 in the report, on hand-built run dirs: every cell recomputed from the snapshots and
metrics.csv rows the runs hold."""

import csv
import zlib
from itertools import combinations

import numpy as np
import pytest
import torch
import yaml

from sae_lab.analysis import build_report, group_conditions, load_runs
from sae_lab.analysis.lm_tables import table4_figure, table4_rows
from sae_lab.analysis.pairwise import trajectory
from sae_lab.artifacts import RunDir, atomic_save_tensors, write_csv
from sae_lab.metrics import evt_null, mmcs

EPOCHS = (0, 1, 10, 20)
SEEDS = (1, 2, 3)
D_MODEL = 4
ERANK = {"m-small": 3.0, "m-big": 2.5}


def _decoder(model: str, layer: int, d_sae: int, seed: int, epoch: int) -> torch.Tensor:
    """Seeds share a component that grows with the epoch, so ratios differ between sizes and epochs."""
    g = torch.Generator().manual_seed(zlib.crc32(f"{model},{layer},{d_sae},{seed},{epoch}".encode()))
    shared = torch.randn(d_sae, D_MODEL, generator=torch.Generator().manual_seed(d_sae + layer))
    return torch.randn(d_sae, D_MODEL, generator=g) + (epoch / 20) * (1 + layer) * shared


def _ce(d_sae: int, seed: int) -> float:
    return 0.5 + d_sae / 100 + seed / 1000


def _make(root, model: str, layer: int, d_sae: int, extra: dict | None = None) -> None:
    for seed in SEEDS:
        run = RunDir(root / f"{model}_L{layer}_d{d_sae}_s{seed}_{len(extra or {})}")
        run.root.mkdir(parents=True)
        cfg = {"model": {"name": model}, "layer": layer, "d_sae": d_sae, "seed": seed, "sae": {"architecture": "topk"},
               **(extra or {})}
        run.config.write_text(yaml.safe_dump(cfg))
        rows = []
        for epoch in EPOCHS:
            decoder = _decoder(model, layer, d_sae, seed, epoch)
            atomic_save_tensors(run.snapshot(seed, epoch), {"decoder": decoder, "firing_counts": torch.ones(d_sae)})
            rows.append({"epoch": epoch, "step": epoch, "seed": seed, "member": 0, "mse_mean": 1.0, "fvu": 0.5,
                         "l0": 2.0, "alive_frac": 1.0, "act_effective_rank": ERANK[model],
                         "ce_loss_score": _ce(d_sae, seed) if epoch in (0, EPOCHS[-1]) else ""})
        write_csv(run.metrics_csv, rows)


def _expected(model: str, layer: int, d_sae: int, epoch: int) -> tuple[float, float, float]:
    values = [float(mmcs(_decoder(model, layer, d_sae, a, epoch), _decoder(model, layer, d_sae, b, epoch)))
              for a, b in combinations(SEEDS, 2)]
    return float(np.mean(values)), float(np.std(values, ddof=1)), float(np.mean(values)) / evt_null(D_MODEL, d_sae)


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_table4_cells_from_the_runs(tmp_path):
    for d_sae in (6, 12, 24):
        _make(tmp_path, "m-small", 1, d_sae)
    summary = build_report(tmp_path, n_resamples=50, progress=False).read_text()
    assert "## Table 4" in summary and "## Table 3" not in summary
    rows = _read(tmp_path / "report" / "table4.csv")
    assert [int(r["d_sae"]) for r in rows] == [6, 12, 24]
    for r in rows:
        d_sae = int(r["d_sae"])
        early, final = _expected("m-small", 1, d_sae, 10), _expected("m-small", 1, d_sae, 20)
        assert float(r["erank"]) == ERANK["m-small"]
        assert float(r["d_sae_over_erank"]) == pytest.approx(d_sae / ERANK["m-small"])
        assert float(r["ratio_epoch10"]) == pytest.approx(early[2], rel=1e-6)
        assert int(r["epoch"]) == 20 and int(r["n_seeds"]) == 3
        assert float(r["mmcs"]) == pytest.approx(final[0], rel=1e-6)
        assert float(r["mmcs_sd"]) == pytest.approx(final[1], rel=1e-5)
        assert float(r["ratio"]) == pytest.approx(final[2], rel=1e-6)
        assert float(r["ce_loss_score"]) == pytest.approx(np.mean([_ce(d_sae, s) for s in SEEDS]))
        assert f"| {d_sae} | {d_sae / 3:.1f} | 3 | {early[2]:.2f}× | 20 | {final[0]:.3f} ± {final[1]:.3f} |" in summary
    assert (tmp_path / "report" / "table4_trajectory.png").stat().st_size > 0


def test_table4_figure_plots_each_size_against_epoch(tmp_path):
    for d_sae in (6, 12):
        _make(tmp_path, "m-small", 1, d_sae)
    conds = group_conditions(load_runs(tmp_path))
    traj = {c.name: trajectory(c, n_resamples=20)[0] for c in conds}
    pairs = {c.name: trajectory(c, n_resamples=20)[1] for c in conds}
    rows = table4_rows(conds, traj, pairs)
    fig = table4_figure(rows, traj, tmp_path / "t4.png")
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("d_sae=")]
    assert [ln.get_label().split(" ")[0] for ln in lines] == ["d_sae=6", "d_sae=12"]
    for line, d_sae in zip(lines, (6, 12), strict=True):
        assert list(line.get_xdata()) == [1, 10, 20]  # epoch 0 is off the log axis
        assert line.get_ydata()[-1] == pytest.approx(_expected("m-small", 1, d_sae, 20)[2], rel=1e-6)


def test_table3_best_ratio_per_model_and_layer(tmp_path):
    subjects = [("m-small", 0), ("m-small", 1), ("m-big", 2)]
    for model, layer in subjects:
        for d_sae in (6, 12):
            _make(tmp_path, model, layer, d_sae)
    summary = build_report(tmp_path, n_resamples=50, progress=False).read_text()
    rows = _read(tmp_path / "report" / "table3.csv")
    assert [(r["model"], int(r["layer"])) for r in rows] == [("m-big", 2), ("m-small", 0), ("m-small", 1)]
    for r in rows:
        ratios = {d: _expected(r["model"], int(r["layer"]), d, 20)[2] for d in (6, 12)}
        best = max(ratios, key=ratios.get)
        assert int(r["d_model"]) == D_MODEL and float(r["erank"]) == ERANK[r["model"]]
        assert int(r["best_d_sae"]) == best and float(r["best_ratio"]) == pytest.approx(ratios[best], rel=1e-6)
        assert r["d_sae_grid"] == "6 12" and int(r["epoch"]) == 20
        assert f"| {r['model']} | {r['layer']} | 4 | {ERANK[r['model']]:.1f} | 20 | {ratios[best]:.2f}× |" in summary
    # Each (model, layer) is also a Table 4 group of its two sizes.
    assert len(_read(tmp_path / "report" / "table4.csv")) == 6


def test_no_lm_tables_when_sizes_differ_in_something_else(tmp_path):
    _make(tmp_path, "m-small", 1, 6, {"lr": 0.001})
    _make(tmp_path, "m-small", 1, 12, {"lr": 0.002})
    summary = build_report(tmp_path, n_resamples=50, progress=False).read_text()
    assert "## Table 4" not in summary and "## Table 3" not in summary
    assert not (tmp_path / "report" / "table4.csv").exists()
