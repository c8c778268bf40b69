"""`python train.py` behaves like a Hydra app: its flags, --help, experiment=, and fast, clean refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from sae_lab.config import CONF_DIR, validate
from tests.helpers.runs import ROOT

TRAIN = str(ROOT / "train.py")


def train_py(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args[:1], TRAIN, *args[1:]] if args and args[0].startswith("-X")
                          else [sys.executable, TRAIN, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})})


def test_shell_completion_passes_through():
    proc = train_py("-sc", "install=bash")
    assert proc.returncode == 0, proc.stderr
    assert "hydra_bash_completion()" in proc.stdout


def test_help_lists_groups_and_keys_not_schema():
    proc = train_py("--help")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "  model       docs-lm, gpt2-small, hf, mod113*, pythia-160m, pythia-410m, pythia-70m, synthetic" in lines
    assert any(line.split()[:2] == ["behaviour.every_evals", "1"] for line in lines if line.strip())
    # defaults given by an env variable or by the subject show their fallback, not the interpolation
    assert any(line.split()[:2] == ["d_sae", "1024"] for line in lines if line.strip())
    assert any(line.split()[:2] == ["device", "cpu"] for line in lines if line.strip())
    assert "${" not in proc.stdout
    assert "schema/" not in proc.stdout


@pytest.mark.parametrize("prefix", ["", "+"])
def test_experiment_with_or_without_plus(prefix):
    proc = train_py(f"{prefix}experiment=table2", "--cfg", "hydra")
    assert proc.returncode == 0, proc.stderr
    assert "      sae: topk,batchtopk,relu,jumprelu\n      seed: range(1,6)\n" in proc.stdout  # the preset's sweep


def test_help_and_refusals_import_neither_lightning_nor_transformer_lens(tmp_path):
    for args in (["--help"], ["k=5000"], ["-sc", "install=bash"]):
        proc = train_py("-Ximporttime", *args, cwd=tmp_path)
        imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
                    if line.startswith("import time:")}
        assert "sae_lab" in imported, args
        assert not {"lightning", "transformer_lens", "transformers"} & imported, args


@pytest.mark.parametrize("override, sentence", [
    ("k=5000", "error: k must be between 1 and d_sae=1024, got 5000."),
    ("seed=1,2", "error: seed=1,2 lists several values; add -m to run one job per value."),
    ("device=mps", "error: device=mps was asked for but this PyTorch has no usable MPS backend (Apple GPUs only); "
                   "use device=cpu or device=auto."),
    ("device=tpu", "error: device must be cpu, auto, cuda, cuda:N or mps, got 'tpu'."),
    ("logger=wandb", "error: logger=wandb found no W&B login: run `wandb login` (or set WANDB_API_KEY), or log "
                     "offline with logger.offline=true."),
])
def test_a_rejected_run_says_one_sentence_and_leaves_no_run_dir(override, sentence, tmp_path):
    env = {"HOME": str(tmp_path), "WANDB_MODE": "", "WANDB_API_KEY": ""}
    proc = train_py(override, cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [sentence]
    assert not (tmp_path / "outputs").exists()


def test_slurm_gpu_preset_trains_on_the_gpu_it_asks_for(monkeypatch):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    assert cfg.hydra.launcher.gpus_per_node == 1
    assert cfg.hydra.job.env_set.SAE_LAB_DEVICE == "auto"  # Hydra sets it in the job's environment
    monkeypatch.setenv("SAE_LAB_DEVICE", "auto")
    assert validate(cfg).device == "auto"
    monkeypatch.delenv("SAE_LAB_DEVICE")
    assert validate(cfg).device == "cpu"
