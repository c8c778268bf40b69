"""Patched CE on a real subject: an exact reconstruction gives L_recon = L_orig (score 1, KL 0), a zero
one gives L_zero (score 0), and the columns equal hand computations from the per-sequence losses."""

import numpy as np
import pytest
import torch

from sae_lab.models import build_subject
from sae_lab.training.patched_ce import PatchedCE, PatchedLosses, behaviour_columns


class FixedReconstruction:
    """A two-member stand-in for an SAE: member 0 returns its input, member 1 returns zeros."""

    n_members = 2
    W_dec = torch.zeros(1)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x, torch.zeros_like(x)])


@pytest.fixture(scope="module")
def mod113_losses():
    subject = build_subject("mod113")
    tokens = subject.eval_dataset()[::37]
    hook = subject.hook_name(1)
    return subject, tokens, hook, PatchedCE(subject, hook, tokens, batch_size=100).losses(FixedReconstruction())


def test_exact_and_zero_patches(mod113_losses):
    subject, tokens, hook, losses = mod113_losses
    assert torch.allclose(losses.l_orig, subject.loss(tokens), atol=1e-6)
    assert torch.allclose(losses.l_recon[0], losses.l_orig, atol=1e-5)
    assert losses.kl[0].abs().max() < 1e-5
    assert torch.allclose(losses.l_recon[1], losses.l_zero, atol=1e-6)
    assert torch.allclose(losses.l_zero, subject.loss(tokens, patch=torch.zeros_like, hook=hook), atol=1e-6)
    exact, zero = behaviour_columns(losses, n_resamples=200)
    assert exact["ce_loss_score"] == pytest.approx(1.0, abs=1e-4) and exact["ce_rec"] == pytest.approx(1.0, abs=1e-2)
    assert zero["ce_loss_score"] == pytest.approx(0.0, abs=1e-9) and zero["kl"] > 1.0


def test_columns_are_the_formulas_on_the_means():
    gen = torch.Generator().manual_seed(0)
    orig, zero = torch.rand(50, generator=gen) + 0.5, torch.rand(50, generator=gen) + 3.0
    recon, kl = (orig + torch.rand(50, generator=gen))[None], torch.rand(1, 50, generator=gen)
    row = behaviour_columns(PatchedLosses(orig, zero, recon, kl), n_resamples=2000)[0]
    o, r, z = orig.double().mean().item(), recon.double().mean().item(), zero.double().mean().item()
    assert row["ce_rec"] == pytest.approx(2 - r / o)
    assert row["ce_loss_score"] == pytest.approx((z - r) / (z - o))
    assert row["kl"] == pytest.approx(kl.double().mean().item())
    # the CI is a paired bootstrap over sequences: it brackets the estimate with a plausible width
    for name in ("ce_rec", "ce_loss_score", "kl"):
        assert row[f"{name}_ci_low"] < row[name] < row[f"{name}_ci_high"]
    sd = np.std(kl.numpy(), ddof=1) / np.sqrt(50)
    assert row["kl_ci_high"] - row["kl_ci_low"] == pytest.approx(2 * 1.96 * sd, rel=0.2)


@pytest.mark.parametrize("layer", [0, 1])
def test_downstream_only_forward_equals_the_full_patched_forward(tmp_path, layer):
    from sae_lab.models.hf import HFSubject
    from tests.helpers.lm_fixtures import save_tiny_lm

    subject = HFSubject(str(save_tiny_lm(tmp_path / "lm", "gpt_neox")))
    tokens = torch.randint(0, 200, (4, 16), generator=torch.Generator().manual_seed(layer))
    hook = subject.hook_name(layer)

    def patch(a):
        return a.roll(1, dims=-1)  # not undone by a final LayerNorm (an affine map would be)

    full, targets = subject.scored_logprobs(tokens, patch=patch, hook=hook)
    fast, _ = subject.scored_logprobs(tokens, patch=patch, hook=hook, residual=subject.clean_residual(tokens, hook))
    assert torch.allclose(full, fast, atol=1e-5)
    assert not torch.allclose(full, subject.scored_logprobs(tokens)[0], atol=1e-3)  # the patch mattered


def test_ensemble_member_equals_its_solo_run():
    """Members share one reconstruction per chunk, yet each member's patch is its own."""
    from sae_lab.sae import build_sae

    subject = build_subject("mod113")
    tokens, hook = subject.eval_dataset()[::50], subject.hook_name(1)
    ensemble = PatchedCE(subject, hook, tokens).losses(build_sae("topk", 128, 256, [0, 1, 2, 3], k=8))
    solo = PatchedCE(subject, hook, tokens).losses(build_sae("topk", 128, 256, [2], k=8))
    assert torch.allclose(ensemble.l_recon[2], solo.l_recon[0], atol=1e-6)
    assert torch.allclose(ensemble.kl[2], solo.kl[0], atol=1e-6)
    assert not torch.allclose(ensemble.l_recon[1], ensemble.l_recon[2])


@pytest.mark.parametrize("members", [[3], [0, 1]])
def test_eval_codes_spare_the_encode_and_change_no_loss(members, monkeypatch):
    """Handed the codes evaluate_members found for the very rows patched CE splices in (mod113), the
    patched losses are bit for bit those of encoding again, and the SAE does not encode again."""
    from sae_lab.sae import build_sae
    from sae_lab.training.evaluation import KeptCodes, evaluate_members

    subject = build_subject("mod113")
    tokens, hook, batch = subject.eval_dataset()[::7], subject.hook_name(1), 512
    x = torch.cat([subject.activations(c, hook) for c in tokens.split(batch)])  # the eval rows, in order
    sae = build_sae("topk", 128, 256, members, k=8)
    with torch.no_grad():
        sae.b_dec += 0.5 * torch.randn(sae.b_dec.shape, generator=torch.Generator().manual_seed(1))
    before = PatchedCE(subject, hook, tokens, batch_size=batch).losses(sae)

    codes = KeptCodes(len(tokens))
    evaluate_members(sae, x, chunk_size=batch * len(members), keep=codes)  # eval chunks of `batch` rows
    assert sorted(codes.chunks) == list(range(0, len(tokens), batch))

    def encode_again(x):
        raise AssertionError("patched CE encoded the eval rows again")

    monkeypatch.setattr(sae, "reconstruct", encode_again)
    after = PatchedCE(subject, hook, tokens, batch_size=batch).losses(sae, codes)
    for name in ("l_orig", "l_zero", "l_recon", "kl"):
        assert torch.equal(getattr(after, name), getattr(before, name)), name
    assert behaviour_columns(after, n_resamples=200) == behaviour_columns(before, n_resamples=200)
    assert after.l_recon.mean() > after.l_orig.mean() + 1e-3  # the reconstruction is not trivially exact


def test_codes_of_other_rows_are_not_used(monkeypatch):
    """Codes whose rows differ from the spliced activations (another order) leave the old path."""
    from sae_lab.sae import build_sae
    from sae_lab.training.evaluation import KeptCodes, evaluate_members

    subject = build_subject("mod113")
    tokens, hook, batch = subject.eval_dataset()[::11], subject.hook_name(1), 256
    x = torch.cat([subject.activations(c, hook) for c in tokens.split(batch)])
    sae = build_sae("topk", 128, 256, [0], k=8)
    before = PatchedCE(subject, hook, tokens, batch_size=batch).losses(sae)
    codes = KeptCodes(len(tokens))
    evaluate_members(sae, x.flip(0), chunk_size=batch, keep=codes)
    calls = []
    reconstruct = sae.reconstruct
    monkeypatch.setattr(sae, "reconstruct", lambda x: calls.append(len(x)) or reconstruct(x))
    after = PatchedCE(subject, hook, tokens, batch_size=batch).losses(sae, codes)
    assert calls == [len(c) for c in tokens.split(batch)]
    assert torch.equal(after.l_recon, before.l_recon) and torch.equal(after.kl, before.kl)
