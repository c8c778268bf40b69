"""`python train.py model=docs-lm` offline: the shipped language model and corpus through the same path as
Pythia (HF directory, TransformerBridge, token loader, activation cache, patched CE), with the Hub off."""

from __future__ import annotations

import pandas as pd

from sae_lab.artifacts import RunDir
from tests.helpers.runs import run_train

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_ENDPOINT": "http://127.0.0.1:9"}


def test_docs_lm_smoke_sweep_offline_into_a_report(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_train("-m", "model=docs-lm", "seed=1..3", "budget=smoke", "progress=false",
                     "model.data.n_train_vectors=20000", "model.data.n_eval_sequences=32", "d_sae=256",
                     f"cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}", env=OFFLINE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [RunDir(p) for p in sorted(sweep.iterdir()) if (p / "metrics.csv").is_file()]
    assert len(runs) == 3
    table = pd.concat([r.metrics_table() for r in runs])
    last = table[table["epoch"] == table["epoch"].max()]
    # a real LM at layer 2 (the preset's default): reconstruction well under the variance, behaviour mostly kept
    assert (last["fvu"] < 0.5).all() and (last["ce_loss_score"] > 0.5).all()
    assert (last["ce_orig"] < last["ce_zero"]).all()
    summary = (sweep / "report" / "summary.md").read_text()
    assert "0 broken run(s)" in summary and "CE loss score" in summary
