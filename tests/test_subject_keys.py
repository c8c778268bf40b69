"""Keys resolved against the subject's shape in validate: d_sae_over_d_model (d_sae = ratio × d_model) and
depth (layer = depth_layers[model.name][depth]), each bad value one sentence; experiment=proxy_gap's table."""

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from sae_lab.config import CONF_DIR, ConfigError, validate

MOD113_D_MODEL = 128


def _cfg(*overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_d_sae_over_d_model_sets_d_sae():
    cfg = validate(_cfg("d_sae_over_d_model=32", "k=8"))
    assert cfg.d_sae == 32 * MOD113_D_MODEL and cfg.d_sae_over_d_model == 32
    assert validate(_cfg("d_sae_over_d_model=0.5", "k=8")).d_sae == MOD113_D_MODEL // 2
    assert validate(_cfg("k=8")).d_sae == 1024  # unset: d_sae as given


@pytest.mark.parametrize("overrides, sentence", [
    (["d_sae_over_d_model=-2"], "d_sae_over_d_model must be null or a positive number, got -2.0."),
    (["d_sae_over_d_model=2", "d_sae_over_erank=2"],
     "set d_sae_over_erank or d_sae_over_d_model, not both (got 2.0 and 2.0)."),
    (["d_sae_over_d_model=0.01", "k=8"], "k=8 exceeds d_sae=1, which d_sae_over_d_model=0.01 gives for "
                                          f"d_model={MOD113_D_MODEL}; set k to at most 1."),
    (["depth=mid"], "depth=mid needs depth_layers for model mod113 (known: none); set depth_layers or use "
                    "depth=null and layer=<l>."),
    (["depth=late", "+depth_layers.mod113={early: 0, mid: 1}"],
     "depth=late is not in depth_layers for model mod113; allowed: early, mid."),
    (["depth=early", "layer=1", "+depth_layers.mod113={early: 0}"],
     "layer=1 contradicts depth=early, which is layer 0 of model mod113; set only one of them."),
    (["depth=mid", "+depth_layers.mod113={mid: 5}"], "layer must be between 0 and 1 for model mod113, got 5."),
])
def test_bad_values_are_one_sentence(overrides, sentence):
    with pytest.raises(ConfigError) as err:
        validate(_cfg(*overrides))
    assert str(err.value) == sentence


def test_depth_picks_the_layer_and_is_recorded():
    cfg = validate(_cfg("depth=early", "+depth_layers.mod113={early: 0, late: 1}"))
    assert (cfg.layer, cfg.depth) == (0, "early")
    again = validate(OmegaConf.to_container(cfg))  # a recorded config (layer and depth both set) re-validates
    assert (again.layer, again.depth) == (0, "early")


def test_proxy_gap_preset_holds_the_logs_hookpoints():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=proxy_gap"], return_hydra_config=True)
    assert OmegaConf.to_container(cfg.depth_layers) == {
        "EleutherAI/pythia-70m": {"early": 1, "mid": 3, "late": 5}, "EleutherAI/pythia-160m": {"mid": 6},
        "EleutherAI/pythia-410m": {"early": 4, "mid": 12, "late": 20}}
    assert (cfg.d_sae_over_d_model, cfg.model.data.n_train_vectors, cfg.budget.epochs) == (32, 10_000_000, 1)
    params = cfg.hydra.sweeper.params
    assert (params.model, params.depth, params.k) == ("pythia-70m,pythia-410m", "early,mid,late",
                                                      "8,16,32,64,128,256")
