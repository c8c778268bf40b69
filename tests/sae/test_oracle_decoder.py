"""sae.oracle_decoder: the decoder is the subject's true dictionary, stays fixed, and only the encoder learns;
every precondition is one sentence naming the key."""

import pytest
import torch
from hydra import compose, initialize_config_dir

from sae_lab.config import CONF_DIR, ConfigError
from sae_lab.models.synthetic import Synthetic
from sae_lab.sae.export import load_member
from sae_lab.training.loop import train
from tests.helpers.runs import train_smoke

SMALL = ["model=synthetic", "model.d=32", "model.n_latents=64", "model.n_samples=2048", "model.n_eval=512"]


def test_the_decoder_is_the_truth_and_only_the_encoder_learns(tmp_path, cache_dir):
    run, last = train_smoke(tmp_path, cache_dir, "oracle", *SMALL, "sae=relu", "sae.oracle_decoder=true",
                            "sae.l1_coefficient=0", "ensemble=2")
    truth = Synthetic(d=32, n_latents=64, n_samples=2048, n_eval=512).ground_truth().dictionary
    first, final = run.read_snapshot(1, 0), run.read_snapshot(1, 2)
    for member in (load_member(run.root, 0), load_member(run.root, 1)):
        torch.testing.assert_close(member.decoder()[0], truth, atol=1e-6, rtol=0)
        assert member.b_dec.abs().max() == 0
    torch.testing.assert_close(final["decoder"], first["decoder"], atol=0, rtol=0)  # never trained
    rows = run.read_metrics()
    assert float(rows[-1]["gt_latent_error"]) < float(rows[0]["gt_latent_error"])  # the encoder learned
    assert float(rows[-1]["gt_mmcs"]) == pytest.approx(1.0, abs=1e-6) and len(last) == 2


@pytest.mark.parametrize("overrides, sentence", [
    (["model=mod113", "d_sae=64"], "sae.oracle_decoder needs a subject with a known dictionary (model=synthetic)"),
    ([*SMALL, "sae.tied=true"], "sae.oracle_decoder needs sae.tied=false"),
    ([*SMALL, "d_sae=128"], "sae.oracle_decoder needs d_sae equal to the subject's 64 true atoms, got d_sae=128."),
    ([*SMALL, "resample.pool=shared"], "resample.pool=shared would overwrite the oracle decoder's rows"),
    ([*SMALL, "sae=ksvd", "sae.oracle_decoder=true"], "sae.oracle_decoder does not apply to sae=ksvd"),
])
def test_oracle_decoder_preconditions_are_one_sentence(overrides, sentence, tmp_path, cache_dir):
    oracle = [] if any("sae.oracle_decoder" in o for o in overrides) else ["sae.oracle_decoder=true"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["budget=smoke", "progress=false", f"cache_dir={cache_dir}",
                                          "sae=relu", *overrides, *oracle])
    with pytest.raises(ConfigError, match=sentence.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.csv").exists()
