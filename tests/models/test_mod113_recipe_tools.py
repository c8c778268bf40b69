"""scripts/train_mod113.py's measuring tools: the recorded activations are the TransformerBridge's at the same
hooks, the card's erank is that of the recorded residual, and `initial_params` is where `train` starts."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from sae_lab.metrics.spectrum import effective_rank
from sae_lab.models.mod113 import CARD_FILE, WEIGHTS_FILE, Mod113, all_inputs

sys.path.insert(0, str(Path(__file__).parents[2] / "scripts"))
from train_mod113 import erank_by_hook, init_params, initial_params, layer1_erank, residual, train  # noqa: E402


@pytest.fixture(scope="module")
def recorded():
    record: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        out = residual(load_file(str(WEIGHTS_FILE)), all_inputs()[:500], all_positions=True, record=record)
    return out, record


@pytest.mark.parametrize("hook", ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_mid", "blocks.0.mlp.hook_post",
                                  "blocks.1.hook_resid_mid", "blocks.1.hook_resid_post"])
def test_recorded_activations_are_the_bridges(recorded, hook):
    tokens = all_inputs()[:500]
    with torch.no_grad():
        _, cache = Mod113().bridge.run_with_cache(tokens, names_filter=lambda n: n == hook)
    torch.testing.assert_close(recorded[1][hook], cache[hook].float(), rtol=1e-4, atol=1e-4)


def test_record_does_not_change_the_residual(recorded):
    with torch.no_grad():
        plain = residual(load_file(str(WEIGHTS_FILE)), all_inputs()[:500], all_positions=True)
    assert torch.equal(recorded[0], plain) and torch.equal(recorded[1]["blocks.1.hook_resid_post"], plain)


def test_cards_erank_is_the_recorded_residuals():
    params = load_file(str(WEIGHTS_FILE))
    card = json.loads(CARD_FILE.read_text())["effective_rank"]
    ours = layer1_erank(params)
    assert ours["erank_eq"] == pytest.approx(card["at_eq"], abs=1e-3)
    assert ours["erank_all"] == pytest.approx(card["all_positions"], abs=1e-3)
    by_hook = erank_by_hook(params)
    assert by_hook["blocks.1.hook_resid_post"] == ours
    with torch.no_grad():
        x = residual(params, all_inputs(), all_positions=True)
    assert ours["erank_b"] == pytest.approx(effective_rank(x[:, 1]))
    assert by_hook["blocks.0.hook_resid_pre"]["erank_eq"] == pytest.approx(1.0)  # "=" embeds one vector


def test_initial_params_are_where_train_starts():
    # lr 0: AdamW's step (and its decoupled weight decay, scaled by lr) leaves every weight where it started
    params, card = train(train_frac=0.3, lr=0.0, weight_decay=1.0, seed=3, max_steps=1, log_every=1,
                         init_scale=2.0, log=lambda message: None)
    start = initial_params(seed=3, init_scale=2.0)
    # the draw order the shipped weights were trained with: the data split, then the weights, one generator
    gen = torch.Generator().manual_seed(3)
    torch.randperm(113 * 113, generator=gen)
    reference = {name: value * 2.0 for name, value in init_params(gen).items()}
    assert card["steps"] == 1 and set(params) == set(start) == set(reference)
    for name, value in start.items():
        assert torch.equal(params[name].detach(), value) and torch.equal(value, reference[name]), name
    assert not torch.equal(start["embed.W_E"], initial_params(seed=4, init_scale=2.0)["embed.W_E"])


def test_erank_by_step_keeps_every_check(tmp_path):
    from mod113_recipes import ErankByStep

    record = ErankByStep(tmp_path / "r_erank_by_step.csv")
    params, _ = train(train_frac=0.3, lr=1e-3, weight_decay=1.0, seed=0, max_steps=2, log_every=1, stop="first",
                      log=lambda message: None, on_check=record)
    table = pd.read_csv(tmp_path / "r_erank_by_step.csv")
    assert table["step"].tolist() == [1, 2] and not (tmp_path / "r_erank_by_step.csv.tmp").exists()
    assert table["erank_eq"].iloc[-1] == pytest.approx(layer1_erank(params)["erank_eq"], abs=1e-3)
    assert table["erank_eq"].iloc[0] != table["erank_eq"].iloc[1]  # measured on the weights of that step
    assert 0 <= table["acc_all"].iloc[-1] < 0.1 and table["train_loss"].iloc[-1] > 1
