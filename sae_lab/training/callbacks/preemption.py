"""SIGTERM, SIGUSR1 and submitit's preemption signal write checkpoints/last.ckpt before the job ends.

A cluster stops a job with SIGTERM (scancel, preemption) or a user signal sent ahead of its time limit
(`--signal=USR1@90`; submitit uses USR2). Saving inside the signal handler could catch an optimiser
step half done, so the handler only records the signal; the next batch boundary writes a mid-epoch
checkpoint (Lightning resumes it at the next batch) and then ends the job: under submitit by handing
over to submitit's own handler (it calls the launcher's `checkpoint`, requeues the job and exits),
elsewhere with RunPreempted, which `python train.py` turns into exit status 128 + the signal number
and the command that resumes the run."""

from __future__ import annotations

import os
import signal
from types import FrameType
from typing import Any

import lightning as L

from sae_lab.artifacts import RunDir, atomic_write


class RunPreempted(Exception):
    """A signal stopped training after a checkpoint was written; the same command resumes it."""

    def __init__(self, run: RunDir, signum: int, epoch: int, step: int) -> None:
        self.run, self.signum = run, signum
        super().__init__(f"Stopped by {signal.Signals(signum).name} in epoch {epoch} at step {step}; "
                         f"checkpoint written to {run.last_checkpoint}.")


def handled_signals() -> list[signal.Signals]:
    """SIGTERM, SIGUSR1, and submitit's preemption signal (USR2 unless SUBMITIT_PREEMPT_SIGNAL says)."""
    submitit = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2").upper().removeprefix("SIG")
    names = ["SIGTERM", "SIGUSR1", "SIG" + submitit]
    found = [getattr(signal, name, None) for name in names]
    return list(dict.fromkeys(s for s in found if s is not None))


def is_submitit_handler(handler: Any) -> bool:
    owner = getattr(handler, "__self__", None)
    return owner is not None and type(owner).__module__.startswith("submitit")


class PreemptionCheckpoint(L.Callback):
    """Installed for the training loop only (on_train_start .. on_train_end); the previous handlers
    (Lightning's SIGTERM notifier, submitit's) are restored afterwards."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.received: int | None = None
        self.stopped_by: int | None = None  # the signal that ended training, once it has
        self.previous: dict[int, Any] = {}

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for signum in handled_signals():
            try:
                self.previous[signum] = signal.signal(signum, self._record)
            except ValueError:  # not the main thread: leave the signals to whoever owns them
                return

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.received is None:
            return
        signum, self.received = self.received, None
        self.stopped_by = signum
        # Lightning stores how many batches of this epoch were consumed: the resumed run starts at the next.
        atomic_write(self.run.last_checkpoint, trainer.save_checkpoint)
        print(f"{signal.Signals(signum).name} received: checkpoint written at step {trainer.global_step} "
              f"(epoch {trainer.current_epoch}, batch {batch_idx + 1}).", flush=True)
        handler = self.previous.get(signum)
        self.restore()
        if is_submitit_handler(handler):
            handler(signum, None)  # submitit: checkpoint the task, requeue the job, exit
        raise RunPreempted(self.run, signum, trainer.current_epoch, trainer.global_step)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.restore()

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            if handler is not None:
                signal.signal(signum, handler)
        self.previous = {}
