"""Interrupted runs resume to exactly the result of an uninterrupted run."""

import lightning as L
import pytest
import torch

from tests.conftest import train_smoke

pytestmark = pytest.mark.slow


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
