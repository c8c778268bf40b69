"""`python -m sae_lab.cli.geometry` prints and writes per-layer geometry from the activation cache."""

import subprocess
import sys

import pandas as pd
import pytest
import torch

from sae_lab.data import subject_activations
from sae_lab.metrics.spectrum import effective_rank, participation_ratio
from sae_lab.models import build_subject
from tests.helpers.runs import ROOT


def test_geometry_of_mod113(tmp_path):
    # its own cache: the session cache must hold only layer 1 (other tests glob it for that entry)
    cache_dir = tmp_path / "cache"
    proc = subprocess.run([sys.executable, "-m", "sae_lab.cli.geometry", "layers=0,1", f"cache_dir={cache_dir}",
                           f"out={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = pd.read_csv(tmp_path / "geometry.csv")
    assert list(table["layer"]) == [0, 1] and (tmp_path / "geometry.png").is_file()
    subject = build_subject("mod113")
    x = subject_activations(subject, subject.hook_name(1), cache_dir)
    row = table.iloc[1]
    assert row["effective_rank"] == pytest.approx(effective_rank(x), rel=1e-9)
    assert row["pr_deflated"] == pytest.approx(participation_ratio(x, deflate=True), rel=1e-9)
    assert row["pr_over_d_model"] == pytest.approx(row["pr_raw"] / 128)
    assert isinstance(x, torch.Tensor) and "| 1 |" in proc.stdout


def test_bad_layer_is_one_sentence(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sae_lab.cli.geometry", "layers=5"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: layers must be between 0 and 1, got 5."
