"""Interrupted runs resume to exactly the result of an uninterrupted run."""

import lightning as L
import pytest
import torch

from sae_lab.artifacts import RunDir
from tests.helpers.runs import train_smoke


class CrashMidEpoch(L.Callback):
    """Checkpoints after batch 20 of the second epoch (as a preempted SLURM job would), then dies."""

    def __init__(self, path):
        self.path = path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 19:
            trainer.save_checkpoint(self.path)
            raise RuntimeError("simulated crash")


class StopMidEpoch(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 19:
            trainer.should_stop = True


def _final_decoder(run):
    return run.read_snapshot(0, 2)["decoder"]


def test_mid_epoch_checkpoint_resumes_at_the_right_batch(tmp_path, cache_dir):
    full, _ = train_smoke(tmp_path, cache_dir, "full")
    path = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_smoke(tmp_path, cache_dir, "cut", callbacks=[CrashMidEpoch(path)])
    state = torch.load(path, weights_only=False)
    assert state["global_step"] == 70  # 50 + 20 batches
    assert state["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]["consumed"] == 20
    resumed, _ = train_smoke(tmp_path, cache_dir, "cut")  # same run dir: resumes from last.ckpt
    assert torch.allclose(_final_decoder(resumed), _final_decoder(full), atol=1e-6)
    assert [(int(r["epoch"]), int(r["step"])) for r in resumed.read_metrics()] == [(0, 0), (1, 50), (2, 100)]


def test_early_stop_mid_epoch_neither_evaluates_nor_checkpoints_a_partial_epoch(tmp_path, cache_dir):
    full, _ = train_smoke(tmp_path, cache_dir, "full")
    cut, _ = train_smoke(tmp_path, cache_dir, "cut", callbacks=[StopMidEpoch()])
    assert [int(r["epoch"]) for r in cut.read_metrics()] == [0, 1]
    assert torch.load(cut.last_checkpoint, weights_only=False)["global_step"] == 50
    resumed, _ = train_smoke(tmp_path, cache_dir, "cut")
    assert torch.allclose(_final_decoder(resumed), _final_decoder(full), atol=1e-6)


class PoisonMember(L.Callback):
    """Member 1's decoder becomes NaN in the second epoch (what a diverging seed looks like)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 10:
            with torch.no_grad():
                pl_module.sae.W_dec[1] = float("nan")


def test_a_nan_in_one_member_names_it_and_keeps_what_the_others_wrote(tmp_path, cache_dir):
    from sae_lab.sae.module import NonFiniteLossError

    with pytest.raises(NonFiniteLossError) as err:
        train_smoke(tmp_path, cache_dir, "nan", "ensemble=3", "seed=4", "d_sae=128", "k=8",
                    "budget.checkpoint_every=1", "trainer.nan_check_every=5", callbacks=[PoisonMember()])
    assert str(err.value) == ("The training loss of member 1 (seed 5) became nan at step 65; lower lr (now 0.0003) "
                              "or check the activations for NaN/inf; the other 2 member(s)' metrics, snapshots and "
                              "checkpoint so far are kept in the run dir.")
    run = RunDir(tmp_path / "nan")
    table = run.metrics_table()
    assert sorted(zip(table["epoch"], table["seed"], strict=True)) == [(0, 4), (0, 5), (0, 6), (1, 4), (1, 5), (1, 6)]
    assert torch.load(run.last_checkpoint, weights_only=False)["global_step"] == 50
    assert run.snapshot_epochs(4) == run.snapshot_epochs(6) == [0, 1]
