"""The report's W&B summary run: which runs trigger it, the MMCS-vs-null curves, and that a W&B failure
costs one sentence, never a report file."""

import pandas as pd
import pytest

from sae_lab.analysis.wandb_summary import NULL_SERIES, log_report, mmcs_series, wandb_logger_node

WANDB = {"_target_": "sae_lab.integrations.wandb_logger.WandbSeedLogger", "project": "p", "offline": False}


def test_only_runs_that_logged_to_wandb_get_a_summary_run(tmp_path):
    csv = {"logger": {"_target_": "lightning.pytorch.loggers.CSVLogger"}}
    assert wandb_logger_node([None, csv]) is None
    assert wandb_logger_node([csv, {"logger": WANDB}]) == WANDB
    assert log_report(tmp_path, tmp_path, [csv]) is None


def test_each_seed_is_its_mean_mmcs_against_the_others_and_the_null_is_a_line():
    pairs = pd.DataFrame({"condition": "c", "epoch": [1, 1, 1], "seed_a": [1, 1, 2], "seed_b": [2, 3, 3],
                          "mmcs": [0.2, 0.4, 0.6]})
    trajectory = pd.DataFrame({"condition": ["c"], "epoch": [1], "mmcs": [0.4], "mmcs_null": [0.1]})
    rows = mmcs_series(pairs, trajectory)["c"].set_index("series")["mmcs"]
    assert rows[["seed 1", "seed 2", "seed 3", NULL_SERIES]].tolist() == pytest.approx([0.3, 0.4, 0.5, 0.1])


def test_a_wandb_failure_is_one_sentence_and_the_files_stay(tmp_path, monkeypatch, capsys):
    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))  # online, and no login anywhere
    (tmp_path / "trajectory.csv").write_text("condition,epoch\nc,0\n")
    assert log_report(tmp_path, tmp_path, [{"logger": WANDB}]) is None
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "logging it to W&B failed" in lines[0] and "wandb login" in lines[0]
    assert (tmp_path / "trajectory.csv").read_text() == "condition,epoch\nc,0\n"
