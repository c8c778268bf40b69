"""The shipped language model (`model=docs-lm`) and its corpus: files against their cards, activations and
held-out loss against a direct transformers forward, a damaged file stopped before any work, and the
corpus script reproducing the shipped token files (where its source packages are installed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from sae_lab.config import CONF_DIR, build_subject
from sae_lab.data import subject_activations
from sae_lab.shipped import PACKAGE_DIR, sha256_of, verify_card
from tests.helpers.runs import ROOT, run_train

MODEL_DIR = PACKAGE_DIR / "models" / "weights" / "docs-lm"
CORPUS_DIR = PACKAGE_DIR / "data" / "corpora" / "docs"


def _card(directory) -> dict:
    return json.loads((directory / "card.json").read_text())


def _subject(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["model=docs-lm", *overrides])
    return build_subject(cfg.model)


def _hf_model():
    from transformers import GPTNeoXForCausalLM

    return GPTNeoXForCausalLM.from_pretrained(MODEL_DIR).eval()


def test_shipped_files_match_their_cards():
    model_files = _card(MODEL_DIR)["sha256"]
    corpus_files = _card(CORPUS_DIR)["sha256"]
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(model_files)
    assert set(corpus_files) == {"train.npy", "heldout.npy", "tokenizer/tokenizer.json"}
    for directory, files in ((MODEL_DIR, model_files), (CORPUS_DIR, corpus_files)):
        for name, digest in files.items():
            assert sha256_of(directory / name) == digest, name
        verify_card(directory)
    sizes = sum(p.stat().st_size for p in CORPUS_DIR.rglob("*") if p.is_file())
    assert sizes <= 25e6 and (MODEL_DIR / "model.safetensors").stat().st_size <= 40e6
    splits = _card(CORPUS_DIR)["splits"]
    for name in ("train", "heldout"):  # the card's token counts are the files'
        assert np.load(CORPUS_DIR / f"{name}.npy").size == splits[name]["tokens"]


def test_cached_activations_equal_a_direct_transformers_forward(tmp_path):
    subject = _subject("model.data.n_train_vectors=2540", "model.data.n_eval_sequences=8")
    layer = 2
    acts = subject_activations(subject, subject.hook_name(layer), tmp_path, progress=False)
    rows = subject.dataset()
    assert rows.shape == (20, 128) and acts.shape == (2540, 128)
    with torch.no_grad():
        hidden = _hf_model()(rows, output_hidden_states=True).hidden_states[layer + 1]
    assert (acts - hidden[:, 1:].reshape(-1, 128)).abs().max() <= 1e-5
    # held-out rows come from held-out documents: none of their 127-token bodies is in the training stream
    train = np.load(CORPUS_DIR / "train.npy")
    held = subject.eval_dataset()
    assert held.shape == (8, 128)
    windows = {tuple(train[i:i + 127]) for i in range(0, 127 * 20, 127)}
    assert all(tuple(r[1:].tolist()) not in windows for r in held)


def test_card_heldout_loss_recomputes_on_its_fixed_subset():
    evaluation = _card(MODEL_DIR)["evaluation"]
    rows = _subject(f"model.data.n_eval_sequences={evaluation['subset_rows']}").eval_dataset()
    assert rows.shape == (evaluation["subset_rows"], 128)
    with torch.no_grad():
        logits = _hf_model()(rows).logits[:, :-1]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), rows[:, 1:].reshape(-1))
    assert abs(loss.item() - evaluation["heldout_loss_subset"]) <= 1e-3
    # plainly a language model: well below the bigram fitted on the training split
    assert evaluation["heldout_loss"] < evaluation["bigram_train_fitted"] - 0.3


@pytest.mark.parametrize("damage", ["flip", "remove"])
def test_a_damaged_shipped_file_stops_with_one_sentence_before_any_work(tmp_path, damage):
    copy = tmp_path / "docs-lm"
    shutil.copytree(MODEL_DIR, copy)
    weights = copy / "model.safetensors"
    if damage == "flip":
        data = bytearray(weights.read_bytes())
        data[-1] ^= 0xFF
        weights.write_bytes(bytes(data))
    else:
        weights.unlink()
    run_dir = tmp_path / "run"
    proc = run_train("model=docs-lm", f"model.name={copy}", "budget=smoke", f"cache_dir={tmp_path / 'cache'}",
                     f"hydra.run.dir={run_dir}", env={"HF_HUB_OFFLINE": "1"})
    expected = _card(MODEL_DIR)["sha256"]["model.safetensors"]
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert str(weights) in lines[0] and expected in lines[0]
    assert not run_dir.exists() and not (tmp_path / "cache").exists()


def _sources_installed() -> bool:
    spec = _card(CORPUS_DIR)["sources"]
    for src in spec:
        proc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", src["package"]], capture_output=True, text=True)
        if proc.returncode != 0 or proc.stdout.strip() != src["version"]:
            return False
    return True


@pytest.mark.skipif(shutil.which("dpkg-query") is None or not _sources_installed(),
                    reason="the corpus's source packages (python3.11-doc, python-django-doc at the card's versions) "
                           "are not installed")
def test_the_corpus_script_reproduces_the_shipped_token_files(tmp_path):
    proc = subprocess.run([sys.executable, "scripts/build_docs_corpus.py", "--installed", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _card(tmp_path)["sha256"] == _card(CORPUS_DIR)["sha256"]
    assert _card(tmp_path)["splits"] == _card(CORPUS_DIR)["splits"]
