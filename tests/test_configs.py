"""Every config file composes, and every group choice instantiates (lightning-hydra-template style)."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from sae_lab.config import CONF_DIR, ConfigError, build_subject, group_choices, validate
from sae_lab.config.experiment_keys import condition_of
from sae_lab.sae.configs import architecture_config
from sae_lab.sae.registry import REGISTRY, load_architectures


def _cfg(*overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def test_every_yaml_file_is_a_choice_that_composes():
    files = sorted(p.relative_to(CONF_DIR) for p in CONF_DIR.rglob("*.yaml"))
    assert Path("train.yaml") in files
    for path in files:
        group = path.parent.as_posix()
        if group in (".", "hydra/launcher"):
            continue
        offline = ["logger.offline=true"] if path.stem == "wandb" else []  # no W&B login here
        cfg = _cfg(f"{group}={path.stem}", *offline)  # experiment is a defaults entry: no "+"
        if group == "model":  # models are instantiated (or refused) in the test below
            continue
        try:
            validate(cfg)
        except ConfigError as err:  # Pythia presets compose, but their weights are not on this offline machine
            assert str(cfg.model.get("name", "")).startswith("EleutherAI/"), (path, err)
            assert "not in the local Hugging Face cache" in str(err), (path, err)


@pytest.mark.parametrize("launcher", group_choices("hydra/launcher"))
def test_launchers_compose(launcher):
    cfg = _cfg(f"hydra/launcher={launcher}")
    assert "submitit" in cfg.hydra.launcher._target_


@pytest.mark.parametrize("model", group_choices("model"))
def test_every_model_instantiates_or_says_why_not(model, tmp_path, monkeypatch):
    """mod113 and docs-lm ship with the package; Hub models are not on this machine (no Hub access), so their
    yaml must compose and then stop with one sentence naming the model and how to provide it;
    `model=hf` is checked on a local tiny model."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = _cfg(f"model={model}")
    if model == "hf":
        from tests.helpers.lm_fixtures import save_tiny_lm

        cfg.model.name = str(save_tiny_lm(tmp_path / "lm", "gpt_neox"))
        cfg.model.data.context_length = 32  # the tiny model's n_ctx is 64
    if model in ("mod113", "docs-lm", "hf", "synthetic"):
        subject = build_subject(validate(cfg).model)
        assert subject.d_model >= 1 and subject.n_layers >= 1
        # the synthetic subject has no network: its one hook is the observation itself
        assert subject.hook_name(0).startswith("blocks.0.") or (model == "synthetic" and subject.hook_name(0) == "x_p")
        return
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    message = str(err.value)
    assert message.startswith(f"model.name={cfg.model.name} is not in the local Hugging Face cache")
    assert "hf download" in message and message.count(". ") == 0


@pytest.mark.parametrize("logger", group_choices("logger"))
def test_every_logger_instantiates(logger, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    node = validate(_cfg(f"logger={logger}")).logger
    extra = {"name": "run"} if node.get("name", "") is None else {}
    built = instantiate(node, save_dir=str(tmp_path), **extra)
    from lightning.pytorch.loggers import Logger

    assert isinstance(built, Logger)  # a Lightning logger (Lightning's own, or sae_lab's one-run-per-seed W&B)


@pytest.mark.parametrize("sae", group_choices("sae"))
def test_every_architecture_yaml_is_its_registered_config(sae):
    cfg = validate(_cfg(f"sae={sae}", "d_sae=64", "k=4"))
    cls, sae_cfg = architecture_config(OmegaConf.to_container(cfg.sae))
    assert cls is REGISTRY[sae] and sae_cfg == cls.config_class()  # the yaml adds nothing of its own
    assert set(cfg.sae) == {"architecture", *sae_cfg.__dataclass_fields__}
    built = cls(128, 64, [0, 1], k=4, cfg=sae_cfg)
    assert built.decoder().shape == (2, 64, 128)


def test_yaml_and_registry_name_the_same_architectures():
    assert sorted(load_architectures()) == group_choices("sae")


def test_an_option_of_another_architecture_is_one_sentence():
    with pytest.raises(ConfigError) as err:
        validate(_cfg("sae=relu", "sae.aux_k=8"))
    assert str(err.value) == ("sae.aux_k does not apply to sae=relu; its keys are sae.tied, sae.oracle_decoder, "
                              "sae.l1_coefficient.")


def test_execution_keys_neither_split_conditions_nor_name_job_dirs():
    a = validate(_cfg("seed=1"))
    b = validate(_cfg("seed=2", "logger=tensorboard", "progress=false", "trainer.log_every_n_steps=5"))
    assert condition_of(a) == condition_of(b)
    assert condition_of(a) != condition_of(validate(_cfg("k=16")))
    excluded = list(_cfg().hydra.job.config.override_dirname.exclude_keys)
    assert {"logger", "trainer", "progress", "device", "cache_dir"} <= set(excluded)
    assert "seed" not in excluded  # siblings differ in seed: it stays in their dir names
