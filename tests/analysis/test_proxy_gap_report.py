"""The proxy-gap section of the report on hand-built run dirs: every cell of proxy_gap*.csv is recomputed
here from the run dirs' config.yaml and metrics.csv (plain pandas/numpy, no sae_lab analysis code)."""

import zlib
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from sae_lab.analysis import build_report, group_conditions, load_runs
from sae_lab.analysis.proxy_gap import proxy_gap_section
from sae_lab.artifacts import RunDir, atomic_save_tensors, write_csv

KS = (2, 4, 8, 16)
EPOCHS = (0, 3)  # the tables read the final epoch; epoch 0's values differ, so a wrong epoch shows
D_MODEL = {"m-70": 4, "m-160": 5, "m-410": 6}
LAYERS = {"m-70": {"early": 1, "mid": 3, "late": 5}, "m-160": {"mid": 6}, "m-410": {"early": 4, "mid": 12, "late": 20}}
SEEDS = {"m-70": (1,), "m-160": (1, 2), "m-410": (1,)}  # two seeds: means over seeds and no single-run CI
METRICS = ("r2", "cos_sim", "rel_error_norm", "mse_mean", "sse_per_token", "sst_per_token", "ce_rec",
           "ce_rec_ci_low", "ce_rec_ci_high", "alive_frac", "rate_proxy", "l0")


def _values(model: str, depth: str, k: int, seed: int, epoch: int) -> dict:
    rng = np.random.default_rng(zlib.crc32(f"{model},{depth},{k},{seed},{epoch}".encode()))
    a = 0.4 + 2.4 * zlib.crc32(f"{model},{depth}".encode()) / 2**32 + 0.05 * seed  # CE_rec = 1 - a/k: k* varies
    ce = 1 - a / k + (0.0 if epoch == EPOCHS[-1] else -0.3)
    return {"r2": float(rng.uniform(0.5, 1)), "cos_sim": float(rng.uniform(0.7, 1)),
            "rel_error_norm": float(rng.uniform(0.1, 0.6)), "mse_mean": float(rng.uniform(0.01, 0.2)),
            "sse_per_token": float(rng.uniform(1, 200)), "sst_per_token": float(rng.uniform(200, 5000)),
            "ce_rec": ce, "ce_rec_ci_low": ce - float(rng.uniform(0.05, 0.2)),
            "ce_rec_ci_high": ce + float(rng.uniform(0.05, 0.2)), "alive_frac": float(rng.uniform(0.1, 1)),
            "rate_proxy": float(rng.uniform(10, 400)), "l0": float(k), "fvu": 0.1}


def _make_runs(root) -> None:
    for model, depths in LAYERS.items():
        for depth, layer in depths.items():
            for k in KS:
                for seed in SEEDS[model]:
                    run = RunDir(root / f"{model}_{depth}_k{k}_s{seed}")
                    run.root.mkdir(parents=True)
                    d_sae = 2 * D_MODEL[model]
                    cfg = {"model": {"name": model}, "layer": layer, "depth": depth, "k": k, "d_sae": d_sae,
                           "d_sae_over_d_model": 2, "seed": seed, "sae": {"architecture": "topk"}}
                    run.config.write_text(yaml.safe_dump(cfg))
                    rows = []
                    for epoch in EPOCHS:
                        decoder = torch.randn(d_sae, D_MODEL[model], generator=torch.Generator().manual_seed(seed))
                        atomic_save_tensors(run.snapshot(seed, epoch),
                                            {"decoder": decoder, "firing_counts": torch.ones(d_sae)})
                        rows.append({"epoch": epoch, "step": epoch, "seed": seed, "member": 0,
                                     **_values(model, depth, k, seed, epoch)})
                    write_csv(run.metrics_csv, rows)


def _expected_conditions(root) -> pd.DataFrame:
    """One row per (model, depth, k) from the run dirs: final-epoch means over seeds, CI for one seed only."""
    rows = []
    for path in sorted(root.iterdir()):
        if not (path / "metrics.csv").is_file():
            continue
        cfg = yaml.safe_load((path / "config.yaml").read_text())
        table = pd.read_csv(path / "metrics.csv")
        last = table[table["epoch"] == table["epoch"].max()].iloc[0]
        rows.append({"model": cfg["model"]["name"], "depth": cfg["depth"], "layer": cfg["layer"], "k": cfg["k"],
                     "d_sae": cfg["d_sae"], "epoch": int(last["epoch"]), **{m: float(last[m]) for m in METRICS}})
    runs = pd.DataFrame(rows)
    out = runs.groupby(["model", "depth", "layer", "k", "d_sae", "epoch"], as_index=False)[list(METRICS)].mean()
    n = runs.groupby(["model", "depth", "k"]).size().rename("n_seeds").reset_index()
    out = out.merge(n, on=["model", "depth", "k"])
    out.loc[out["n_seeds"] > 1, ["ce_rec_ci_low", "ce_rec_ci_high"]] = np.nan
    out["alive_pct"] = 100 * out["alive_frac"]
    out["d_model"] = out["model"].map(D_MODEL)
    return out


def _k_star(ks: list[int], ce: list[float], t: float) -> float | None:
    """A reference k*(t): walk the sorted grid to the first point at or above t, interpolate from the one before."""
    points = sorted(zip(ks, ce, strict=True))
    for (k0, c0), (k1, c1) in zip([(None, None)] + points[:-1], points, strict=True):
        if c1 >= t:
            return float(k1) if k0 is None else k0 + (k1 - k0) * (t - c0) / (c1 - c0)
    return None


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("proxy_gap")
    _make_runs(root)
    build_report(root, n_resamples=200, progress=False)
    return root, _expected_conditions(root)


def test_every_condition_cell_comes_from_its_runs(report):
    root, expected = report
    table = pd.read_csv(root / "report" / "proxy_gap.csv")
    assert len(table) == len(expected) == (3 + 1 + 3) * len(KS)
    assert table["group"].nunique() == 1
    merged = table.merge(expected, on=["model", "depth", "k"], suffixes=("", "_want"), validate="one_to_one")
    assert len(merged) == len(expected)
    for col in ("layer", "d_sae", "d_model", "epoch", "n_seeds"):
        assert (merged[col] == merged[f"{col}_want"]).all(), col
    assert (merged["epoch"] == EPOCHS[-1]).all()
    for col in [m for m in METRICS if m != "alive_frac"] + ["alive_pct"]:
        np.testing.assert_allclose(merged[col], merged[f"{col}_want"], rtol=1e-12, err_msg=col)
    assert merged.loc[merged["model"] == "m-160", "ce_rec_ci_low"].isna().all()
    assert merged.loc[merged["model"] != "m-160", "ce_rec_ci_low"].notna().all()
    # rows go early, mid, late; within a depth by k, then by d_model
    order = {"early": 0, "mid": 1, "late": 2}
    keys = list(zip(table["depth"].map(order), table["k"], table["d_model"], strict=True))
    assert keys == sorted(keys)


def test_every_delta_cell_is_the_larger_model_minus_the_smaller(report):
    root, expected = report
    deltas = pd.read_csv(root / "report" / "proxy_gap_delta.csv")
    want = []
    for (depth, k), at in expected.groupby(["depth", "k"]):
        at = at.sort_values("d_model")
        for (_, a), (_, b) in combinations(at.iterrows(), 2):
            want.append({"depth": depth, "k": k, "model_a": a["model"], "model_b": b["model"],
                         "delta_r2_want": b["r2"] - a["r2"], "delta_ce_rec_want": b["ce_rec"] - a["ce_rec"]})
    want = pd.DataFrame(want)
    assert len(deltas) == len(want) == 2 * len(KS) + 3 * len(KS)  # early/late: one pair; mid: three
    merged = deltas.merge(want, on=["depth", "k", "model_a", "model_b"], validate="one_to_one")
    assert len(merged) == len(want)
    np.testing.assert_allclose(merged["delta_r2"], merged["delta_r2_want"], rtol=1e-12)
    np.testing.assert_allclose(merged["delta_ce_rec"], merged["delta_ce_rec_want"], rtol=1e-12)
    gap = (merged["delta_r2_want"] > 0) & (merged["delta_ce_rec_want"] < 0)
    assert (merged["proxy_gap"].astype(bool) == gap).all()


def test_correlations_pooled_and_within_fixed_k(report):
    root, expected = report
    corr = pd.read_csv(root / "report" / "proxy_gap_corr.csv").set_index("depth")
    assert sorted(corr.index) == ["early", "late", "mid"]
    for depth, at in expected.groupby("depth"):
        pooled = np.corrcoef(at["r2"], at["ce_rec"])[0, 1]
        r2 = at["r2"] - at.groupby("k")["r2"].transform("mean")
        ce = at["ce_rec"] - at.groupby("k")["ce_rec"].transform("mean")
        within = np.sum(r2 * ce) / np.sqrt(np.sum(r2 ** 2) * np.sum(ce ** 2))  # residuals have mean 0
        assert corr.at[depth, "n_points"] == len(at)
        assert corr.at[depth, "n_models"] == at["model"].nunique()
        assert corr.at[depth, "r_pooled"] == pytest.approx(pooled, rel=1e-9)
        assert corr.at[depth, "r_within_k"] == pytest.approx(within, rel=1e-9)


def test_k_star_per_model_and_its_ratio_to_the_smallest(report):
    root, expected = report
    stars = pd.read_csv(root / "report" / "proxy_gap_kstar.csv")
    assert sorted(stars["target"].unique()) == [0.85, 0.9]
    assert len(stars) == 2 * (2 + 3 + 2)  # targets × (model, depth) pairs
    reached = 0
    for (depth, model), at in expected.groupby(["depth", "model"]):
        smallest = expected[expected["depth"] == depth].sort_values("d_model")["model"].iloc[0]
        base = expected[(expected["depth"] == depth) & (expected["model"] == smallest)]
        for t in (0.85, 0.9):
            row = stars[(stars["depth"] == depth) & (stars["model"] == model) & (stars["target"] == t)]
            assert len(row) == 1
            want = _k_star(at["k"].tolist(), at["ce_rec"].tolist(), t)
            k0 = _k_star(base["k"].tolist(), base["ce_rec"].tolist(), t)
            got = row["k_star"].iloc[0]
            if want is None:
                assert pd.isna(got)
                assert pd.isna(row["ratio"].iloc[0])
                continue
            reached += 1
            assert got == pytest.approx(want, rel=1e-12)
            assert row["ratio_to"].iloc[0] == smallest
            if k0 is None:
                assert pd.isna(row["ratio"].iloc[0])
            else:
                assert row["ratio"].iloc[0] == pytest.approx(want / k0, rel=1e-12)
    assert reached >= 4  # the hand-built CE_rec curves cross the targets inside the grid for most subjects


def test_summary_section_and_no_section_without_several_subjects(report, tmp_path):
    root, expected = report
    summary = (root / "report" / "summary.md").read_text()
    assert "## Proxy gap" in summary and "| depth | k | model a | model b | ΔR² | ΔCE_rec | proxy gap |" in summary
    row = expected[(expected["model"] == "m-70") & (expected["depth"] == "early") & (expected["k"] == 2)].iloc[0]
    assert (f"{row['ce_rec']:.3f} [{row['ce_rec_ci_low']:.3f}, {row['ce_rec_ci_high']:.3f}]" in summary)
    # one subject with a k sweep (the plain k*(t) case) is no proxy-gap study
    one = [c for c in group_conditions(load_runs(root)) if c.config["model"]["name"] == "m-70"
           and c.config["depth"] == "mid"]
    assert len(one) == len(KS) and proxy_gap_section(one, tmp_path) == []
    assert not (tmp_path / "proxy_gap.csv").exists()
