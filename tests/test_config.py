"""Config validation, eval schedules, seed ranges and override checks — all before any work."""

import pytest
from hydra import compose, initialize_config_dir

from sae_lab.cli import check_overrides, prepare_argv, rewrite_ranges
from sae_lab.config import CONF_DIR, BudgetConfig, ConfigError, eval_epochs, member_seeds, validate


def _cfg(*overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_defaults_validate():
    cfg = validate(_cfg())
    assert (cfg.model.name, cfg.sae.architecture, cfg.budget.name, cfg.logger.name) == \
        ("mod113", "topk", "short", "csv")
    assert (cfg.layer, cfg.d_sae, cfg.k, cfg.batch_size, cfg.lr) == (1, 1024, 32, 256, 3e-4)


@pytest.mark.parametrize("override, sentence", [
    ("seed=abc", "seed must be an integer, got 'abc'."),
    ("seed=1.5", "seed must be an integer, got 1.5."),
    ("k=2000", "k must be between 1 and d_sae=1024, got 2000."),
    ("layer=2", "layer must be between 0 and 1 for model mod113, got 2."),
    ("d_sae=0", "d_sae must be an integer >= 1, got 0."),
    ("ensemble=0", "ensemble must be an integer >= 1, got 0."),
    ("lr=-1", "lr must be a positive number, got -1.0."),
])
def test_bad_values_give_one_sentence(override, sentence):
    with pytest.raises(ConfigError) as err:
        validate(_cfg(override))
    assert str(err.value) == sentence


def test_unknown_choices_and_keys():
    allowed = "batchtopk, jumprelu, ksvd, matryoshka, relu, topk"
    with pytest.raises(ConfigError, match=rf"^sae=foo is not a known choice; allowed: {allowed}\.$"):
        check_overrides(["sae=foo"])
    with pytest.raises(ConfigError,
                       match=r"^budget=huge is not a known choice; allowed: long, short, smoke\.$"):
        check_overrides(["-m", "budget=smoke,huge"])
    with pytest.raises(ConfigError, match="^foo is not a setting sae_lab knows"):
        check_overrides(["foo=1"])
    check_overrides(["sae=topk", "budget=smoke", "seed=range(1,4)", "hydra.verbose=true", "sae=glob(*)"])


def test_a_presets_model_choice_admits_that_models_keys():
    # experiment=certificate picks model=synthetic in its defaults: its keys are settings, mod113's lack of
    # them does not matter (this was refused as "not a setting sae_lab knows")
    check_overrides(["experiment=certificate", "model.n_latents=64", "model.k=2,4"])
    with pytest.raises(ConfigError, match="^model.n_latents is not a setting sae_lab knows"):
        check_overrides(["experiment=figure1", "model.n_latents=64"])
    with pytest.raises(ConfigError, match="^model.foo is not a setting sae_lab knows"):
        check_overrides(["experiment=certificate", "model.foo=1"])


def test_seed_ranges_are_inclusive():
    assert rewrite_ranges(["-m", "seed=1..20", "d_sae=64"]) == ["-m", "seed=range(1,21)", "d_sae=64"]
    assert rewrite_ranges(["data_seed=0..1"]) == ["data_seed=range(0,2)"]
    assert prepare_argv(["seed=3"]) == ["seed=3"]
    with pytest.raises(ConfigError, match="empty range"):
        rewrite_ranges(["seed=5..2"])


def test_eval_schedules():
    assert eval_epochs(BudgetConfig(epochs=2, eval_schedule="every")) == [0, 1, 2]
    short = eval_epochs(BudgetConfig(epochs=30, eval_schedule="log", n_evals=12))
    assert short[0] == 0 and short[-1] == 30 and short == sorted(set(short))
    long = eval_epochs(BudgetConfig(epochs=2000, eval_schedule="log", n_evals=40))
    assert long[:3] == [0, 1, 2] and long[-1] == 2000 and 30 <= len(long) <= 41
    gaps = [b / a for a, b in zip(long[10:], long[11:], strict=False)]
    assert max(gaps) < 1.4  # roughly constant ratio between eval epochs: log spacing


def test_eval_every_adds_regular_epochs_to_the_log_schedule():
    log = eval_epochs(BudgetConfig(epochs=2000, eval_schedule="log", n_evals=40))
    both = eval_epochs(BudgetConfig(epochs=2000, eval_schedule="log", n_evals=40, eval_every=100))
    assert both == sorted(set(log) | set(range(0, 2001, 100)))
    assert len(log) == 37 and len(both) == 56  # 19 of the 21 hundreds are not log points already
    with pytest.raises(ConfigError, match="budget.eval_every must be null or an integer >= 1, got 0."):
        validate({"budget": {"eval_every": 0}})


def test_member_seeds():
    assert member_seeds(5, 3) == [5, 6, 7]
