"""Per-eval cross-seed agreement columns of an ensemble's members."""

import numpy as np
import pytest
import torch

from sae_lab.artifacts import RunDir
from sae_lab.metrics import decoder_hungarian, evt_null, mmcs
from sae_lab.training.callbacks.cross_seed import CrossSeedAgreement


def test_columns_average_each_members_pairs(tmp_path):
    gen = torch.Generator().manual_seed(0)
    base = torch.nn.functional.normalize(torch.randn(64, 16, generator=gen), dim=-1)
    # Seed 2 is seed 1's atoms permuted with flipped signs (MMCS 1, matching 1); seed 3 is random.
    decoders = {1: base, 2: -base[torch.randperm(64, generator=gen)],
                3: torch.nn.functional.normalize(torch.randn(64, 16, generator=gen), dim=-1)}
    cols = CrossSeedAgreement(RunDir(tmp_path), {}, hungarian=True, siblings=False).columns(5, decoders)
    m13 = mmcs(base, decoders[3])
    assert mmcs(base, decoders[2]) == pytest.approx(1.0, abs=1e-6)
    assert cols[1]["mmcs"] == pytest.approx((1.0 + m13) / 2, abs=1e-6)
    assert cols[3]["mmcs"] == pytest.approx((m13 + mmcs(decoders[3], decoders[2])) / 2, abs=1e-6)
    h13 = decoder_hungarian(base, decoders[3])["mean"]
    assert cols[1]["hungarian_mean"] == pytest.approx((1.0 + h13) / 2, abs=1e-6)
    for seed in decoders:
        assert cols[seed]["n_partners"] == 2
        assert cols[seed]["mmcs_null"] == pytest.approx(evt_null(16, 64))
        assert cols[seed]["mmcs_x_random"] == pytest.approx(cols[seed]["mmcs"] / evt_null(16, 64))
    # Each member's value is its own pairs' mean, whichever member a shared pair was computed for.
    direct = {s: np.mean([mmcs(decoders[s], decoders[t]) for t in decoders if t != s]) for s in decoders}
    assert all(cols[s]["mmcs"] == pytest.approx(direct[s], abs=1e-6) for s in decoders)


def test_solo_run_outside_a_sweep_has_no_partners(tmp_path):
    cols = CrossSeedAgreement(RunDir(tmp_path), {}, siblings=False).columns(1, {7: torch.eye(4)})
    assert cols[7]["n_partners"] == 0 and "mmcs" not in cols[7]
