"""SAELens loads every architecture's export and reproduces sae_lab's codes and reconstructions.

SAELens runs in its own venv (tests/helpers/saelens_venv.py), scripts/saelens_interop.py as a subprocess.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from sae_lab.artifacts import RunDir, atomic_save_tensors, atomic_write_text
from sae_lab.data import subject_activations
from sae_lab.models import build_subject
from sae_lab.sae.export import load_member
from tests.helpers.runs import ROOT, train_smoke
from tests.helpers.saelens_venv import saelens_python

# sae_lab architecture -> the SAELens inference class its export must load as
SAELENS_ARCHITECTURE = {"topk": "topk", "batchtopk": "jumprelu", "relu": "standard", "jumprelu": "jumprelu",
                        "matryoshka": "jumprelu"}
HOOK = "blocks.1.hook_resid_post"
TOLERANCE = 1e-5
N_TOKENS = 2048
@torch.no_grad()
def write_case(cases: Path, name: str, run: RunDir, x: torch.Tensor) -> None:
    """case.json naming the export, and sae_lab's own reconstruction and active features of x.

    x goes in per member ([1, B, d]): that path computes (x - b_dec) W + b_enc in SAELens's order. The
    shared-input path ([B, d]) folds b_dec into the bias for speed, which on mod113 (|x| up to ~35,
    b_dec near their mean) moves x̂ by a few float32 ulps; the script reports that difference too."""
    sae = load_member(run.root, 0)
    z = sae.encode(x[None])[0]
    case = cases / name
    atomic_write_text(case / "case.json", json.dumps({"export_dir": str(run.sae_dir(0))}) + "\n")
    atomic_save_tensors(case / "sae_lab.safetensors",
                        {"x": x, "x_hat": sae.reconstruct(x[None])[0], "active": (z != 0).to(torch.uint8),
                         "x_hat_shared": sae.reconstruct(x)[0]})


@pytest.fixture(scope="module")
def report(tmp_path_factory, cache_dir) -> dict:
    """Train a tiny run of every architecture, write the cases, run the SAELens side once."""
    python = saelens_python()  # first: a failed venv build should not cost five trainings
    root = tmp_path_factory.mktemp("interop")
    subject = build_subject("mod113")
    x = subject_activations(subject, subject.hook_name(1), cache_dir)[:N_TOKENS].contiguous()
    for arch in SAELENS_ARCHITECTURE:
        run, _ = train_smoke(root / "runs", cache_dir, arch, f"sae={arch}", "budget.epochs=1", "d_sae=128",
                             "behaviour.enabled=false")
        write_case(root / "cases", arch, run, x)
    out = root / "report.json"
    proc = subprocess.run([str(python), str(ROOT / "scripts" / "saelens_interop.py"), str(root / "cases"),
                           "--out", str(out), "--tolerance", str(TOLERANCE)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # 1: a case failed; the per-case tests say which
    return json.loads(out.read_text())


@pytest.mark.parametrize("arch", list(SAELENS_ARCHITECTURE))
def test_saelens_reproduces_export(report, arch):
    case = report[arch]
    assert case["architecture"] == SAELENS_ARCHITECTURE[arch]
    assert case["training_architecture"] == arch and case["hook_name"] == HOOK
    assert case["n_tokens"] == N_TOKENS
    assert case["max_abs_diff"] <= TOLERANCE
    assert case["active_mismatches"] == 0 and case["active_agreement"] == 1.0
    assert case["mean_l0"] > 0  # a dead export would agree trivially
    assert case["max_abs_diff_shared_input"] <= 1e-4  # float32 roundoff only (about 5e-6 of max |x|)
    assert case["ok"]


def test_topk_export_keeps_k_per_token(report):
    assert report["topk"]["mean_l0"] == 32  # k's default: SAELens applies the same top-k
