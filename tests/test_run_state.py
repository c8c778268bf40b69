"""Resuming a run dir: which stored configs count as the same experiment."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from sae_lab.artifacts import RunDir
from sae_lab.config import ConfigError
from sae_lab.training.run_state import check_same_experiment
from tests.test_config import _cfg


def _store(run: RunDir, cfg, drop: str | None = None, group: str = "sae") -> None:
    plain = OmegaConf.to_container(cfg, resolve=True)
    if drop:
        del plain[group][drop]
    run.config.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(plain), run.config)


def test_a_key_added_after_the_run_was_written_resumes_at_its_default(tmp_path):
    # A run written before sae.oracle_decoder existed (Figure 1's TopK arm was refused on resume).
    run = RunDir(tmp_path)
    _store(run, _cfg(), drop="oracle_decoder")
    check_same_experiment(run, _cfg())
    with pytest.raises(ConfigError, match="sae.oracle_decoder=None, not sae.oracle_decoder=True"):
        check_same_experiment(run, _cfg("sae.oracle_decoder=true"))


def test_a_changed_key_is_still_refused(tmp_path):
    run = RunDir(tmp_path)
    _store(run, _cfg())
    with pytest.raises(ConfigError, match="k=32, not k=16"):
        check_same_experiment(run, _cfg("k=16"))


def test_a_subject_key_added_after_the_run_was_written_resumes_at_its_default(tmp_path):
    # Runs written before model.weights existed (every mod113 run until then) must still resume.
    run = RunDir(tmp_path)
    _store(run, _cfg(), drop="weights", group="model")
    check_same_experiment(run, _cfg())
    with pytest.raises(ConfigError, match="model.weights=None, not model.weights=other"):
        check_same_experiment(run, _cfg("model.weights=other"))
