"""`python train.py -m model=hf model.name=<local dir> seed=1..2` end to end into a report, on a tiny
random GPT-NeoX and GPT-2 and a tiny local text data set: the cached activations are the model's, the
patched-CE columns are what the exported SAEs give, and `model=pythia-70m` offline fails fast."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from sae_lab.artifacts import RunDir
from sae_lab.data.cache import ShardedActivations
from sae_lab.models.hf import HFSubject
from sae_lab.sae.export import load_member
from sae_lab.training.patched_ce import PatchedCE, behaviour_columns
from tests.helpers.lm_fixtures import load_hf_model, save_tiny_lm, save_tiny_text_dataset
from tests.helpers.runs import ROOT, run_train

DATA = ["model.data.context_length=32", "model.data.n_train_vectors=3000", "model.data.n_eval_sequences=16"]


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    return save_tiny_text_dataset(tmp_path_factory.mktemp("text"), 300)


@pytest.mark.parametrize("arch", ["gpt_neox", "gpt2"])
def test_hf_sweep_into_a_report(arch, text_dir, tmp_path):
    model_dir = save_tiny_lm(tmp_path / "lm", arch)
    sweep, cache = tmp_path / "sweep", tmp_path / "cache"
    proc = run_train("-m", "model=hf", f"model.name={model_dir}", f"model.data.dataset={text_dir}", *DATA,
                     "layer=1", "d_sae=64", "k=4", "seed=1..2", "budget=smoke", "progress=false",
                     f"cache_dir={cache}", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = (sweep / "report" / "summary.md").read_text()
    assert "0 broken run(s)" in summary and "CE loss score" in summary

    run = RunDir(next(p for p in sweep.iterdir() if p.name.startswith("job")))
    table = run.metrics_table()
    assert {"ce_orig", "ce_recon", "ce_zero", "ce_rec", "ce_loss_score", "kl", "kl_ci_low"} <= set(table.columns)

    # The training cache holds exactly n_train_vectors, equal to HF's block-1 output at the kept positions.
    subject = HFSubject(str(model_dir), data={"dataset": str(text_dir), "context_length": 32,
                                             "n_train_vectors": 3000, "n_eval_sequences": 16})
    train_entry = next(p for p in cache.iterdir() if json.loads((p / "meta.json").read_text())["spec"]
                       ["data"].get("part") != "eval")
    acts = ShardedActivations.open(train_entry)
    assert len(acts) == 3000
    rows = subject.dataset()[:4]
    hf = load_hf_model(model_dir)
    captured = []
    block = hf.gpt_neox.layers[1] if arch == "gpt_neox" else hf.transformer.h[1]
    handle = block.register_forward_hook(lambda m, a, out: captured.append(out[0] if isinstance(out, tuple) else out))
    with torch.no_grad():
        hf(rows)
    handle.remove()
    expected = captured[0][:, 1:].reshape(-1, captured[0].shape[-1])
    assert torch.allclose(acts[torch.arange(len(expected))], expected, atol=1e-5)

    # Training and eval rows never share a sequence.
    train_rows = {tuple(r.tolist()) for r in subject.dataset()}
    assert not train_rows & {tuple(r.tolist()) for r in subject.eval_dataset()}

    # metrics.csv's behaviour columns at the last epoch = PatchedCE on the exported SAE, by hand.
    seed = int(table["seed"].iloc[0])
    sae = load_member(run.root, seed)
    hook = subject.hook_name(1)
    row = behaviour_columns(PatchedCE(subject, hook, subject.eval_dataset()).losses(sae), n_resamples=1000)[0]
    last = table[table["epoch"] == table["epoch"].max()].iloc[0]
    for name in ("ce_orig", "ce_recon", "ce_zero", "ce_rec", "ce_loss_score", "kl"):
        assert last[name] == pytest.approx(row[name], rel=1e-4, abs=1e-6), name


def test_pythia_offline_fails_fast_with_one_sentence(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HYDRA_FULL_ERROR": "0"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "train.py", "model=pythia-70m", f"hydra.run.dir={tmp_path / 'run'}",
                           f"cache_dir={tmp_path / 'cache'}"], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=120)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [lines[-1]] and lines[0].startswith("error: model.name=EleutherAI/pythia-70m is not in the local")
    assert "Traceback" not in proc.stderr and not (tmp_path / "cache").exists()
    print(f"model=pythia-70m refused in {elapsed:.1f} s")


@pytest.mark.parametrize("override, start", [
    ("model.data.context_length=100", "error: model.data.context_length=100 exceeds"),
    ("model.data.n_train_vectors=10000000", "error: data.n_train_vectors=10000000"),
    ("layer=2", "error: layer must be between 0 and 1"),
])
def test_bad_lm_input_is_one_sentence_and_writes_no_cache(override, start, text_dir, tmp_path):
    model_dir = save_tiny_lm(tmp_path / "lm", "gpt_neox")
    cache = tmp_path / "cache"
    proc = run_train("model=hf", f"model.name={model_dir}", f"model.data.dataset={text_dir}", *DATA, override,
                     "budget=smoke", "progress=false", f"cache_dir={cache}", f"hydra.run.dir={tmp_path / 'run'}")
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(start), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not list(cache.glob("*/meta.json"))  # nothing a later run could take for a complete cache
