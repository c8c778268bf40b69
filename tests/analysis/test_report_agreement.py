"""The report's live-only, subspace, signed-Hungarian and shared-latent numbers on hand-built run dirs whose
answers are known: decoders that share a subspace, and basis-vector dictionaries with dead atoms."""

from __future__ import annotations

import csv
import math
import shutil
from itertools import combinations

import pytest
import torch

from sae_lab.analysis import build_report
from sae_lab.artifacts import RunDir
from sae_lab.metrics import live_only_mmcs, shared_latent_fraction, signed_hungarian_mean, subspace_overlap
from tests.helpers.hand_runs import make_run_snapshots, write_export

SEEDS = (1, 2, 3)
EYE = torch.eye(16)
# Condition "basis": 8 atoms in R^16. Atoms 0-3 fire and are e0..e3 in every seed (seed 2 permuted, e2
# negated); atoms 4-7 are dead and are basis vectors no other seed uses, so every |cos| is 0 or 1.
LIVE = {1: EYE[[0, 1, 2, 3]], 2: torch.stack([EYE[1], EYE[0], EYE[3], -EYE[2]]), 3: EYE[[0, 1, 2, 3]]}
DEAD = {1: EYE[4:8], 2: EYE[8:12], 3: EYE[12:16]}
COUNTS = torch.tensor([5, 5, 5, 5, 0, 0, 0, 0])
BASIS, SUBSPACE = "d_sae=8", "d_sae=48"  # condition names


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _shared_subspace_decoder(seed: int) -> torch.Tensor:
    """48 atoms in R^40 that all lie near one 8-dim subspace Q (scale 10) with a little noise of their own."""
    q = torch.linalg.qr(torch.randn(40, 8, generator=torch.Generator().manual_seed(99)))[0]
    g = torch.Generator().manual_seed(seed)
    return 10 * torch.randn(48, 8, generator=g) @ q.T + 0.05 * torch.randn(48, 40, generator=g)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("agreement")
    runs = {}
    for seed in SEEDS:
        cfg = {"sae": {"architecture": "topk"}, "d_sae": 8, "lr": 0.001, "seed": seed}
        decoder = torch.cat([LIVE[seed], DEAD[seed]])
        runs[seed] = make_run_snapshots(root, f"basis{seed}", cfg, {0: (decoder, torch.ones(8)), 1: (decoder, COUNTS)})
        write_export(runs[seed], seed, decoder, decoder)  # encoder rows = decoder rows
        cfg = {"sae": {"architecture": "topk"}, "d_sae": 48, "lr": 0.002, "seed": seed}
        random = torch.randn(48, 40, generator=torch.Generator().manual_seed(1000 + seed))
        make_run_snapshots(root, f"subspace{seed}", cfg, {0: (random, torch.ones(48)),
                                                          1: (_shared_subspace_decoder(seed), torch.ones(48))})
    summary = build_report(root, n_resamples=200, progress=False)
    return root, summary


def _section(summary, condition):
    return summary.read_text().split(f"### {condition}\n")[1].split("\n### ")[0]


def _pairs(summary, condition):
    return {(int(r["epoch"]), int(r["seed_a"]), int(r["seed_b"])): r for r in _read(summary.parent / "pairs.csv")
            if r["condition"] == condition}


def _trajectory(summary, condition):
    return {int(r["epoch"]): r for r in _read(summary.parent / "trajectory.csv") if r["condition"] == condition}


def test_live_only_metrics_ignore_dead_atoms(report):
    _, summary = report
    pairs, traj = _pairs(summary, BASIS), _trajectory(summary, BASIS)
    for (epoch, _, _), row in pairs.items():
        # half the atoms are dead and orthogonal to everything: all-atom MMCS and Hungarian are 1/2
        assert float(row["mmcs"]) == pytest.approx(0.5) and float(row["hungarian_mean"]) == pytest.approx(0.5)
        live = 1.0 if epoch == 1 else 0.5  # at epoch 0 every atom fires, so live-only = all-atom
        assert float(row["live_mmcs"]) == pytest.approx(live)
        assert float(row["live_hungarian_mean"]) == pytest.approx(live)
    assert float(traj[1]["live_mmcs"]) == pytest.approx(1.0)
    assert float(traj[1]["live_hungarian_mean"]) == pytest.approx(1.0)
    assert float(traj[1]["alive_frac"]) == pytest.approx(0.5) and float(traj[1]["mmcs"]) == pytest.approx(0.5)
    decoders = {s: torch.cat([LIVE[s], DEAD[s]]) for s in SEEDS}
    assert float(pairs[(1, 1, 2)]["live_mmcs"]) == pytest.approx(
        live_only_mmcs(decoders[1], decoders[2], COUNTS, COUNTS))
    text = _section(summary, BASIS)
    assert "| live MMCS | live Hungarian |" in text
    assert "| 1 | 0.5000 | 0.5000 | 0.5000 [" in text and "| 0.5000 | 1.0000 | 1.0000 | 50.0 |" in text


def test_signed_hungarian_counts_the_negated_atom_against(report):
    _, summary = report
    pairs = _pairs(summary, BASIS)
    # pairs with seed 2: e2 meets −e2 (cos −1), so the signed matching pairs e2 with an orthogonal atom (0)
    expected = {(1, 2): 3 / 8, (1, 3): 4 / 8, (2, 3): 3 / 8}
    for (_, a, b), row in pairs.items():
        assert float(row["signed_hungarian_mean"]) == pytest.approx(expected[(a, b)])
        da, db = torch.cat([LIVE[a], DEAD[a]]), torch.cat([LIVE[b], DEAD[b]])
        assert float(row["signed_hungarian_mean"]) == pytest.approx(signed_hungarian_mean(da, db))


def test_shared_latent_fraction_at_the_final_epoch_from_the_exports(report):
    _, summary = report
    pairs = _pairs(summary, BASIS)
    expected = {(1, 2): 3 / 8, (1, 3): 4 / 8, (2, 3): 3 / 8}
    for (a, b), value in expected.items():
        assert pairs[(0, a, b)]["shared_latent_frac"] == ""  # the export holds the final state only
        assert float(pairs[(1, a, b)]["shared_latent_frac"]) == pytest.approx(value)
        da, db = torch.cat([LIVE[a], DEAD[a]]), torch.cat([LIVE[b], DEAD[b]])
        assert value == pytest.approx(shared_latent_fraction(da, da, db, db))


def test_subspace_overlap_columns_match_direct_calls(report):
    root, summary = report
    traj, pairs = _trajectory(summary, SUBSPACE), _pairs(summary, SUBSPACE)
    assert "subspace_r64" not in traj[1] or traj[1]["subspace_r64"] == ""  # 64 > d_model = 40
    snaps = {s: RunDir(root / f"subspace{s}").read_snapshot(s, 1)["decoder"] for s in SEEDS}
    for r in (8, 16, 32):
        direct = [subspace_overlap(snaps[a], snaps[b], r) for a, b in combinations(SEEDS, 2)]
        for (a, b), value in zip(combinations(SEEDS, 2), direct, strict=True):
            assert float(pairs[(1, a, b)][f"subspace_r{r}"]) == pytest.approx(value, rel=1e-9)
        mean = sum(direct) / len(direct)
        assert float(traj[1][f"subspace_r{r}"]) == pytest.approx(mean, rel=1e-9)
        assert float(traj[1][f"subspace_r{r}_baseline"]) == pytest.approx(r / 40)
        assert float(traj[1][f"subspace_r{r}_x_baseline"]) == pytest.approx(mean / (r / 40), rel=1e-9)
    assert float(traj[1]["subspace_r8"]) > 0.99  # the shared 8-dim subspace is found
    text = _section(summary, SUBSPACE)
    assert f"| 8 | {float(traj[1]['subspace_r8']):.3f} | 0.200 | {float(traj[1]['subspace_r8_x_baseline']):.2f}× |" \
        in text
    assert "| epoch | r=8 | r=16 | r=32 |" in text


def test_basis_dictionaries_have_known_subspace_overlap(report):
    _, summary = report
    # 8 orthonormal atoms in R^16: the rank-8 subspace is their span; seeds share e0..e3 of 8 dimensions
    traj = _trajectory(summary, BASIS)
    assert float(traj[1]["subspace_r8"]) == pytest.approx(0.5)
    assert float(traj[1]["subspace_r8_x_baseline"]) == pytest.approx(1.0)
    assert "subspace_r16" not in traj[1] or traj[1]["subspace_r16"] == ""  # 16 > d_sae = 8


def test_an_export_of_another_epoch_is_not_used(report, tmp_path):
    root, _ = report
    for seed in SEEDS:
        shutil.copytree(root / f"basis{seed}", tmp_path / f"basis{seed}")
    run = RunDir(tmp_path / "basis3")
    write_export(run, 3, torch.cat([LIVE[3], DEAD[3]]), torch.cat([LIVE[3], DEAD[3]]) * 0 + EYE[:8])
    summary = build_report(tmp_path, n_resamples=100, progress=False)
    rows = _read(summary.parent / "pairs.csv")
    assert [r["shared_latent_frac"] for r in rows if r["epoch"] == "1"] == ["", "", ""]
    assert not math.isnan(float(rows[0]["mmcs"]))
