"""`python train.py experiment=table4_scaled model=hf ...` (make reproduce-table4 MODEL=hf) end to end on a
tiny local GPT-NeoX: each size's d_sae comes from the cached activations' effective rank, and every cell
of the report's table4.csv is recomputed from the run dirs; the Pythia preset offline fails fast.
`make reproduce-table3 MODEL=hf ...` on the same kind of model: every cell of table3.csv from its run dirs."""

import csv
import os
import subprocess
import sys
import time
from itertools import combinations

import numpy as np
import pytest
import torch
import yaml
from omegaconf import OmegaConf

from sae_lab.artifacts import RunDir
from sae_lab.config import ConfigError, validate
from sae_lab.metrics import effective_rank, evt_null, mmcs
from sae_lab.training.erank_sizing import adopt_recorded_d_sae, resolve_d_sae
from tests.helpers.lm_fixtures import HIDDEN, save_tiny_lm, save_tiny_text_dataset
from tests.helpers.make_target import run_make
from tests.helpers.runs import ROOT, run_train

RATIOS = (1.25, 5.0)  # two of table4_scaled.yaml's four (1.25, 2.5, 5, 10): one process each
FINAL = 15  # budget.epochs 15, n_evals 7: evals at 0, 1, 2, 4, 6, 10, 15 (epoch 10: the early column)


def _pair_mean(run: RunDir, seeds: list[int], epoch: int) -> tuple[float, float]:
    values = [float(mmcs(run.read_snapshot(a, epoch)["decoder"], run.read_snapshot(b, epoch)["decoder"]))
              for a, b in combinations(seeds, 2)]
    return float(np.mean(values)), float(np.std(values, ddof=1))


def test_table4_scaled_on_a_tiny_local_lm(tmp_path):
    model_dir = save_tiny_lm(tmp_path / "lm", "gpt_neox")
    text_dir = save_tiny_text_dataset(tmp_path / "text", 200)
    sweep = tmp_path / "sweep"
    start = time.perf_counter()
    proc = run_train("-m", "experiment=table4_scaled", "model=hf", f"model.name={model_dir}",
                     f"model.data.dataset={text_dir}", "model.data.context_length=32",
                     "model.data.n_train_vectors=400", "model.data.n_eval_sequences=8", "layer=1", "k=4",
                     "d_sae_over_erank=1.25,5", "budget.epochs=15", "budget.n_evals=7", "budget.checkpoint_every=15",
                     "progress=false", "agreement_hungarian=false", f"cache_dir={tmp_path / 'cache'}",
                     f"hydra.sweep.dir={sweep}")
    print(f"table4_scaled on the tiny LM: {time.perf_counter() - start:.1f} s")
    assert proc.returncode == 0, proc.stderr[-3000:]

    runs = {}
    for path in sorted(sweep.glob("job*")):
        run = RunDir(path)
        cfg = yaml.safe_load(run.config.read_text())
        table = run.metrics_table()
        erank = float(table["act_effective_rank"].iloc[0])
        assert 1 < erank <= HIDDEN
        # The recorded d_sae is the ratio times the erank of the training activations metrics.csv reports.
        assert cfg["d_sae"] == round(cfg["d_sae_over_erank"] * erank)
        assert (run.root / ".hydra" / "config.yaml").is_file()
        runs[cfg["d_sae"]] = (run, cfg, table, erank)
    assert sorted(c["d_sae_over_erank"] for _, c, _, _ in runs.values()) == list(RATIOS)

    with open(sweep / "report" / "table4.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["d_sae"]) for r in rows] == sorted(runs)
    for r in rows:
        run, cfg, table, erank = runs[int(r["d_sae"])]
        seeds = sorted(int(s) for s in table["seed"].unique())
        assert seeds == [1, 2, 3] and int(r["n_seeds"]) == 3
        null = evt_null(HIDDEN, cfg["d_sae"])
        early, (final, sd) = _pair_mean(run, seeds, 10)[0], _pair_mean(run, seeds, FINAL)
        assert float(r["erank"]) == pytest.approx(erank)
        assert float(r["d_sae_over_erank"]) == pytest.approx(cfg["d_sae"] / erank)
        assert float(r["ratio_epoch10"]) == pytest.approx(early / null, rel=1e-6)
        assert int(r["epoch"]) == FINAL
        assert float(r["mmcs"]) == pytest.approx(final, rel=1e-6)
        assert float(r["mmcs_sd"]) == pytest.approx(sd, rel=1e-5)
        assert float(r["ratio"]) == pytest.approx(final / null, rel=1e-6)
        last = table[table["epoch"] == FINAL]
        assert float(r["ce_loss_score"]) == pytest.approx(float(last["ce_loss_score"].mean()), rel=1e-9)
    summary = (sweep / "report" / "summary.md").read_text()
    assert "## Table 4" in summary and (sweep / "report" / "table4_trajectory.png").stat().st_size > 0


def test_d_sae_from_the_erank_and_kept_on_resume(tmp_path):
    """resolve_d_sae on activations of known effective rank, its one-sentence refusal of k > d_sae, and a
    resumed run keeping the d_sae its config.yaml records."""
    acts = torch.randn(500, 16, generator=torch.Generator().manual_seed(0)) * torch.linspace(0.1, 1, 16)
    erank = effective_rank(acts)
    cfg = OmegaConf.create({"d_sae": 1024, "d_sae_over_erank": 2.5, "k": 4})
    assert resolve_d_sae(cfg, acts) == erank and cfg.d_sae == round(2.5 * erank)
    cfg = OmegaConf.create({"d_sae": 1024, "d_sae_over_erank": 0.25, "k": 32})
    with pytest.raises(ConfigError, match=rf"^k=32 exceeds d_sae={round(0.25 * erank)}, which d_sae_over_erank="
                                          rf"0.25 gives for the activations' effective rank {erank:.1f}; set k "):
        resolve_d_sae(cfg, acts)
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    run.config.write_text(yaml.safe_dump({"d_sae": 37, "d_sae_over_erank": 2.5}))
    resumed = OmegaConf.create({"d_sae": 1024, "d_sae_over_erank": 2.5})
    adopt_recorded_d_sae(run, resumed)
    assert resumed.d_sae == 37
    other = OmegaConf.create({"d_sae": 1024, "d_sae_over_erank": 5.0})
    adopt_recorded_d_sae(run, other)  # another ratio: check_same_experiment refuses it, nothing adopted
    assert other.d_sae == 1024
    with pytest.raises(ConfigError, match=r"^d_sae_over_erank must be null or a positive number, got -1.0.$"):
        validate({"d_sae_over_erank": -1.0})


def test_table4_offline_fails_fast_with_the_subject_sentence(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.run([sys.executable, "train.py", "experiment=table4", f"hydra.sweep.dir={tmp_path / 's'}",
                           f"cache_dir={tmp_path / 'cache'}"], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 1  # every job fails alone, before any cache is built (the timeout bounds it)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 4 and all(e.startswith("error: model.name=EleutherAI/pythia-410m is not in the local")
                                    for e in errors)
    assert "Traceback" not in proc.stderr and not (tmp_path / "cache").exists()


def test_make_reproduce_table3_on_a_tiny_local_lm(tmp_path):
    """Two layers of one local model (the Pythia rows' protocol: TopK, 3 seeds as one ensemble, a d_sae grid)
    on the smoke budget; each row's erank, d_model, best ratio and its d_sae are recomputed from the runs."""
    model_dir = save_tiny_lm(tmp_path / "lm", "gpt_neox")
    text_dir = save_tiny_text_dataset(tmp_path / "text", 200)
    sweep = tmp_path / "sweep"
    proc = run_make("reproduce-table3", "MODEL=hf", f"MODEL_NAME={model_dir}", f"DATASET={text_dir}", "LAYER=0,1",
                    f"TABLE3_DIR={sweep}",
                    "ARGS=d_sae=16,48 k=4 budget.epochs=2 budget.checkpoint_every=2 model.data.context_length=32 "
                    "model.data.n_train_vectors=400 model.data.n_eval_sequences=8 behaviour.n_resamples=200 "
                    f"progress=false agreement_hungarian=false cache_dir={tmp_path / 'cache'}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]

    ratios: dict[int, dict[int, float]] = {}  # layer -> d_sae -> mean MMCS over seed pairs / EVT null
    eranks: dict[int, float] = {}
    for path in sorted(sweep.glob("job*")):
        run = RunDir(path)
        cfg = yaml.safe_load(run.config.read_text())
        assert cfg["model"]["name"] == str(model_dir) and cfg["budget"]["epochs"] == 2
        table = run.metrics_table()
        eranks.setdefault(cfg["layer"], float(table["act_effective_rank"].iloc[0]))
        seeds = sorted(int(s) for s in table["seed"].unique())
        assert seeds == [1, 2, 3]
        ratios.setdefault(cfg["layer"], {})[cfg["d_sae"]] = _pair_mean(run, seeds, 2)[0] / evt_null(HIDDEN,
                                                                                                    cfg["d_sae"])
    assert sorted(ratios) == [0, 1] and all(sorted(r) == [16, 48] for r in ratios.values())

    with open(sweep / "report" / "table3.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["layer"]) for r in rows] == [0, 1]
    for r in rows:
        layer = int(r["layer"])
        best = max(ratios[layer], key=lambda d: (ratios[layer][d], -d))
        assert r["model"] == str(model_dir)
        assert int(r["d_model"]) == HIDDEN and int(r["epoch"]) == 2
        assert float(r["erank"]) == pytest.approx(eranks[layer])
        assert int(r["best_d_sae"]) == best
        assert float(r["best_ratio"]) == pytest.approx(ratios[layer][best], rel=1e-6)
        assert r["d_sae_grid"] == "16 48"
    assert "## Table 3" in (sweep / "report" / "summary.md").read_text()


def test_make_reproduce_table3_runs_every_sweep_when_one_fails(tmp_path, monkeypatch):
    """Offline, each of the three Pythia sweeps fails with its subject's sentence; all three are tried (make
    used to stop at the first) and make fails at the end."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    proc = run_make("reproduce-table3", f"TABLE3_DIR={tmp_path / 'sweep'}", f"ARGS=cache_dir={tmp_path / 'cache'}",
                    timeout=300)
    assert proc.returncode != 0
    missing = {line.split()[1] for line in proc.stderr.splitlines() if line.startswith("error: model.name=")}
    assert missing == {"model.name=EleutherAI/pythia-70m", "model.name=EleutherAI/pythia-160m",
                       "model.name=EleutherAI/pythia-410m"}
    assert "Traceback" not in proc.stderr and not (tmp_path / "cache").exists()
