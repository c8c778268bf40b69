"""`make reproduce-proxy-gap MODEL=hf ...` end to end on two tiny local GPT-NeoX models of different widths
(smoke budget, k 2 and 4, layers 0 and 1), two sweeps into one dir: the report's proxy-gap tables are read
back and every cell is checked against the run dirs' config.yaml and metrics.csv."""

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.helpers.lm_fixtures import save_tiny_lm, save_tiny_text_dataset
from tests.helpers.make_target import run_make

WIDTHS = {"small": 32, "large": 48}
METRICS = ("r2", "cos_sim", "rel_error_norm", "sse_per_token", "sst_per_token", "ce_rec", "ce_rec_ci_low",
           "ce_rec_ci_high", "rate_proxy")


def test_proxy_gap_on_two_tiny_local_models(tmp_path):
    text_dir = save_tiny_text_dataset(tmp_path / "text", 200)
    sweep = tmp_path / "sweep"
    models = {}
    for name, hidden in WIDTHS.items():
        models[name] = save_tiny_lm(tmp_path / name, "gpt_neox", seed=hidden, hidden=hidden)
        proc = run_make("reproduce-proxy-gap", "MODEL=hf", f"MODEL_NAME={models[name]}", f"DATASET={text_dir}",
                        "LAYER=0,1", "KS=2,4", "TOKENS=400", f"PROXY_GAP_DIR={sweep}",
                        f"ARGS=model.data.context_length=32 model.data.n_eval_sequences=8 behaviour.n_resamples=200 "
                        f"progress=false agreement_hungarian=false cache_dir={tmp_path / 'cache'}")
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]

    runs = []
    for job in sorted(sweep.glob("job*")):
        cfg = yaml.safe_load((job / "config.yaml").read_text())
        table = pd.read_csv(job / "metrics.csv")
        last = table[table["epoch"] == table["epoch"].max()]
        assert len(last) == 1 and int(last["epoch"].iloc[0]) == 1  # one seed, one pass over the 400 vectors
        hidden = WIDTHS[next(n for n, p in models.items() if str(p) == cfg["model"]["name"])]
        assert cfg["d_sae"] == 32 * hidden and cfg["d_sae_over_d_model"] == 32 and cfg["depth"] is None
        assert cfg["model"]["data"]["n_train_vectors"] == 400
        runs.append({"model": cfg["model"]["name"], "layer": cfg["layer"], "k": cfg["k"], "d_model": hidden,
                     "d_sae": cfg["d_sae"], **{m: float(last[m].iloc[0]) for m in METRICS},
                     "alive_pct": 100 * float(last["alive_frac"].iloc[0])})
    want = pd.DataFrame(runs)
    assert len(want) == 2 * 2 * 2 and want["ce_rec"].notna().all()

    report = sweep / "report"
    got = pd.read_csv(report / "proxy_gap.csv")
    assert len(got) == len(want)
    merged = got.merge(want, on=["model", "layer", "k"], suffixes=("", "_want"), validate="one_to_one")
    assert len(merged) == len(want)
    assert (merged["depth"] == "layer " + merged["layer"].astype(str)).all()
    assert (merged["d_model"] == merged["d_model_want"]).all() and (merged["d_sae"] == merged["d_sae_want"]).all()
    for col in (*METRICS, "alive_pct"):
        np.testing.assert_allclose(merged[col], merged[f"{col}_want"], rtol=1e-12, err_msg=col)

    deltas = pd.read_csv(report / "proxy_gap_delta.csv")
    assert len(deltas) == 2 * 2  # per layer and k: the one pair of models
    small, large = str(models["small"]), str(models["large"])
    for d in deltas.itertuples():
        assert (d.model_a, d.model_b) == (small, large)
        a = want[(want["model"] == small) & (want["layer"] == int(d.depth.split()[1])) & (want["k"] == d.k)].iloc[0]
        b = want[(want["model"] == large) & (want["layer"] == int(d.depth.split()[1])) & (want["k"] == d.k)].iloc[0]
        assert d.delta_r2 == pytest.approx(b["r2"] - a["r2"], rel=1e-12)
        assert d.delta_ce_rec == pytest.approx(b["ce_rec"] - a["ce_rec"], rel=1e-12)
    corr = pd.read_csv(report / "proxy_gap_corr.csv")
    assert sorted(corr["depth"]) == ["layer 0", "layer 1"] and (corr["n_points"] == 4).all()
    for c in corr.itertuples():
        at = want[want["layer"] == int(c.depth.split()[1])]
        assert c.r_pooled == pytest.approx(np.corrcoef(at["r2"], at["ce_rec"])[0, 1], rel=1e-9)
    stars = pd.read_csv(report / "proxy_gap_kstar.csv")
    assert len(stars) == 2 * 2 * 2 and sorted(stars["target"].unique()) == [0.85, 0.9]
    summary = (report / "summary.md").read_text()
    assert "## Proxy gap" in summary and "0 broken run(s)" in summary
