"""The SAELens-layout export and `load_member` round-trip every architecture's weights."""

import pytest
import torch

from sae_lab.artifacts import RunDir
from sae_lab.sae import build_sae
from sae_lab.sae.export import export_members, load_member


@pytest.mark.parametrize("architecture", ["topk", "relu", "jumprelu"])
@pytest.mark.parametrize("d_sae", [64, 16])  # d_sae == d_model: a transposition bug would load silently
def test_export_round_trip(tmp_path, architecture, d_sae):
    torch.manual_seed(0)  # not the global RNG state left by whichever tests ran before on this worker
    sae = build_sae(architecture, 16, d_sae, [3, 4], k=4)
    with torch.no_grad():
        for p in sae.parameters():
            p.add_(torch.randn_like(p))
    export_members(RunDir(tmp_path), sae, "mod113", "blocks.1.hook_resid_post")
    x = torch.randn(50, 16)
    for member, seed in enumerate(sae.member_seeds):
        state = sae.member_state(member)
        # SAELens orientation: pre-activations are (x - b_dec) @ W_enc + b_enc.
        assert state["W_enc"].shape == (16, d_sae)
        pre = (x - state["b_dec"]) @ state["W_enc"] + state["b_enc"]
        assert torch.allclose(pre, sae.pre_activations(x)[member], atol=1e-5)
        loaded = load_member(tmp_path, seed)
        # float32 sums in another order (one member vs the batched ensemble) differ by up to ~1e-5 relative to
        # the sum of |terms| (seen in CI); a transposed or misassigned weight differs by O(1)
        assert torch.allclose(loaded.reconstruct(x)[0], sae.reconstruct(x)[member], rtol=1e-4, atol=1e-4)
