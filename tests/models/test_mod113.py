"""The shipped mod-113 model: perfect accuracy through the TransformerBridge, hooks, patched loss."""

import json

import pytest
import torch

from sae_lab.models import SubjectModel, build_subject
from sae_lab.models.mod113 import CARD_FILE, Mod113, all_inputs, answers


@pytest.fixture(scope="module")
def model():
    return Mod113()


def test_shipped_weights_solve_every_pair(model):
    assert len(all_inputs()) == 113 * 113
    assert model.accuracy() == 1.0  # all 12,769 pairs, through TransformerBridge.boot_native


def test_model_card_records_recipe_and_accuracy():
    card = json.loads(CARD_FILE.read_text())
    assert card["heldout_accuracy"] == 1.0 and card["accuracy_all_pairs"] == 1.0
    assert {"lr", "weight_decay", "train_frac", "seed"} <= set(card["recipe"])


def test_protocol_and_hook_names(model):
    assert isinstance(model, SubjectModel)
    assert (model.d_model, model.n_layers) == (128, 2)
    assert model.hook_name(1) == "blocks.1.hook_resid_post"
    assert "blocks.1.hook_resid_post" in model.bridge.hook_dict
    with pytest.raises(ValueError, match="layer=2 is out of range"):
        model.hook_name(2)


def test_activations_at_equals_position(model):
    tokens = all_inputs()[:8]
    acts = model.activations(tokens, model.hook_name(0))
    _, cache = model.bridge.run_with_cache(tokens)
    assert acts.shape == (8, 128)
    assert torch.allclose(acts, cache["blocks.0.hook_resid_post"][:, 2])


def test_patched_loss(model):
    tokens = all_inputs()[::97]
    hook = model.hook_name(1)
    clean = model.loss(tokens)
    assert clean.shape == (len(tokens),) and clean.max() < 0.1
    assert torch.allclose(model.loss(tokens, patch=lambda a: a, hook=hook), clean, atol=1e-5)
    zeroed = model.loss(tokens, patch=torch.zeros_like, hook=hook)
    assert zeroed.mean() > 1.0  # the answer is gone without the residual stream
    # CE by hand for the first example
    logits = model.logits(tokens[:1])
    assert clean[0].item() == pytest.approx(
        (-logits.log_softmax(-1)[0, answers(tokens[:1])[0]]).item(), abs=1e-5)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="model.name='gpt9' is not a known subject model"):
        build_subject("gpt9")


def test_model_card_states_the_effective_rank_it_has(model):
    from sae_lab.metrics.spectrum import effective_rank

    card = json.loads(CARD_FILE.read_text())["effective_rank"]
    acts = model.activations(all_inputs(), model.hook_name(1))  # what the activation cache holds
    assert effective_rank(acts) == pytest.approx(card["at_eq"], abs=1e-3)


@pytest.mark.parametrize("layer", [0, 1])
def test_clean_pass_is_scored_logprobs_and_clean_residual(model, layer):
    """Patched CE's clean pass (one forward for the last block) gives exactly the two separate calls."""
    tokens, hook = all_inputs()[::13], model.hook_name(layer)
    lp, targets, residual = model.clean_pass(tokens, hook)
    lp_ref, targets_ref = model.scored_logprobs(tokens)
    assert torch.equal(lp, lp_ref) and torch.equal(targets, targets_ref)
    assert torch.equal(residual, model.clean_residual(tokens, hook))
    assert model.clean_pass(tokens, model.hook_name(layer, "mlp_out"))[2] is None


def test_weights_key_picks_another_shipped_network(tmp_path, monkeypatch):
    """model.weights names a .safetensors + .json card in the weights dir; here a copy of the untrained start."""
    import shutil
    import sys
    from pathlib import Path

    from safetensors.torch import save_file

    import sae_lab.models.mod113 as mod113

    sys.path.insert(0, str(Path(__file__).parents[2] / "scripts"))
    from train_mod113 import initial_params

    for suffix in (".safetensors", ".json"):
        shutil.copy(mod113.WEIGHTS_FILE.with_suffix(suffix), tmp_path / f"mod113{suffix}")
    save_file(initial_params(seed=0), str(tmp_path / "untrained.safetensors"))
    shutil.copy(CARD_FILE, tmp_path / "untrained.json")
    monkeypatch.setattr(mod113, "WEIGHTS_DIR", tmp_path)
    assert mod113.shipped_weights() == ["mod113", "untrained"]
    untrained = Mod113(weights="untrained")
    assert untrained.fingerprint() != Mod113().fingerprint()  # so the activation cache keeps them apart
    assert untrained.accuracy() < 0.05 and Mod113().accuracy() == 1.0
    with pytest.raises(FileNotFoundError, match="weights=nope is not a mod-113 network.*shipped: mod113, untrained"):
        Mod113(weights="nope")
