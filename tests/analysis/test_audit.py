"""The held-out audit cascade against a direct computation on the same exported SAEs."""

from __future__ import annotations

import pytest
import torch

from sae_lab.analysis.audit import AUDIT_TOKENS, NULL_BLOCK, audit_condition, audit_summary
from sae_lab.artifacts import RunDir
from sae_lab.metrics.agreement import (
    activation_hungarian,
    decoder_hungarian,
    firing_overlap_hungarian,
    permute_features_per_block,
    random_dictionaries,
)
from sae_lab.models.mod113 import Mod113, all_inputs
from sae_lab.sae.export import load_member
from tests.analysis.conftest import SEEDS


def test_audit_cascade_matches_a_direct_computation(smoke_runs):
    members = {s: RunDir(smoke_runs / f"seed{s}") for s in SEEDS}
    pairs = audit_condition(members)
    assert list(zip(pairs["seed_a"], pairs["seed_b"], strict=True)) == [(1, 2), (1, 3), (2, 3)]

    model = Mod113()  # activations straight from the model, not through the cache the audit reads
    x = model.activations(all_inputs()[:AUDIT_TOKENS], model.hook_name(1)).float()
    a, b = load_member(members[1].root, 1), load_member(members[2].root, 2)
    with torch.no_grad():
        za, zb = a.encode(x)[0], b.encode(x)[0]
    row = pairs.iloc[0]
    assert row["decoder"] == pytest.approx(decoder_hungarian(a.decoder()[0], b.decoder()[0])["mean"], abs=1e-6)
    assert row["activation"] == pytest.approx(activation_hungarian(za, zb), abs=1e-4)
    assert row["firing"] == pytest.approx(firing_overlap_hungarian(za, zb), abs=1e-4)
    shuffled = permute_features_per_block(zb, NULL_BLOCK, seed=0)
    assert row["activation_null"] == pytest.approx(activation_hungarian(za, shuffled), abs=1e-4)
    assert row["firing_null"] == pytest.approx(firing_overlap_hungarian(za, shuffled), abs=1e-4)
    assert row["decoder_null"] == pytest.approx(
        decoder_hungarian(*random_dictionaries(2, 256, 128, seed=0))["mean"], abs=1e-9)
    # trained SAEs share more than their nulls, even after 2 epochs
    assert (pairs["firing"] > pairs["firing_null"]).all() and (pairs["decoder"] > pairs["decoder_null"]).all()

    summary = audit_summary(pairs)
    assert summary["audit_activation"] == pytest.approx(pairs["activation"].mean())
    assert summary["audit_firing_ratio"] == pytest.approx(pairs["firing"].mean() / pairs["firing_null"].mean())


def test_audit_needs_two_exports(smoke_runs):
    assert audit_condition({1: RunDir(smoke_runs / "seed1")}).empty


def test_every_report_carries_the_audit_cascade(smoke_runs, tmp_path):
    import shutil

    import pandas as pd

    from sae_lab.analysis import build_report

    runs = tmp_path / "runs"
    shutil.copytree(smoke_runs, runs)
    summary = build_report(runs, n_resamples=200, progress=False).read_text()
    final = pd.read_csv(runs / "report" / "final.csv").iloc[0]
    direct = audit_summary(audit_condition({s: RunDir(runs / f"seed{s}") for s in SEEDS}))
    for key, value in direct.items():
        assert final[key] == pytest.approx(value, rel=1e-6), key
    assert "Held-out audit cascade of the exported SAEs (3 seed pairs, 2048 held-out tokens)" in summary
    assert f"| {direct['audit_firing']:.4f} | {direct['audit_firing_null']:.4f} |" in summary
