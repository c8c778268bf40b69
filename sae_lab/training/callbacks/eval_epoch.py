"""At each eval epoch: reconstruction + health metrics per member -> metrics.csv and the logger,
and each member's decoder and firing counts -> snapshots/seed{S}/epoch{E}.safetensors."""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L

from sae_lab.artifacts import RunDir, atomic_save_tensors, write_csv
from sae_lab.metrics import effective_rank
from sae_lab.models.protocol import GroundTruth
from sae_lab.sae.base import MemberSAE
from sae_lab.training.callbacks.checkpoint import epoch_completed
from sae_lab.training.callbacks.cross_seed import CrossSeedAgreement
from sae_lab.training.evaluation import KeptCodes, evaluate_members, ground_truth_columns
from sae_lab.training.patched_ce import PatchedCE, behaviour_columns


class EvalCallback(L.Callback):
    """Evaluates at epoch 0 (the initialisation) and after every epoch listed in `eval_epochs`."""

    def __init__(self, run: RunDir, eval_epochs: Sequence[int], chunk_size: int = 4096,
                 agreement: CrossSeedAgreement | None = None, behaviour: PatchedCE | None = None,
                 behaviour_epochs: Sequence[int] = (), behaviour_resamples: int = 1000,
                 truth: GroundTruth | None = None) -> None:
        self.run = run
        self.truth = truth  # the subject's true dictionary and eval latents, when it has them
        self.agreement = agreement
        self.behaviour, self.behaviour_epochs = behaviour, set(int(e) for e in behaviour_epochs)
        self.behaviour_resamples = int(behaviour_resamples)
        self.constant: dict[str, float] = {}
        self.eval_epochs = set(int(e) for e in eval_epochs)
        self.chunk_size = chunk_size
        # Rows already written by an earlier, resumed attempt are kept.
        self.rows: list[dict] = run.read_metrics() if run.metrics_csv.is_file() else []
        self.last: dict[int, dict] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Logged once per run: how many directions the activations really use.
        # (On at most the first 200K vectors: an SVD of a memory-mapped LM cache would not fit.)
        self.constant["act_effective_rank"] = effective_rank(trainer.datamodule.train_data[:200_000])
        for logger in trainer.loggers:
            logger.log_metrics(dict(self.constant), step=trainer.global_step)
        if 0 in self.eval_epochs and trainer.current_epoch == 0 and trainer.global_step == 0:
            self.evaluate(trainer, pl_module, 0)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1  # epoch E = after E full passes
        if epoch in self.eval_epochs and epoch_completed(trainer):
            self.evaluate(trainer, pl_module, epoch)

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> None:
        sae: MemberSAE = pl_module.sae
        due = self.behaviour is not None and epoch in self.behaviour_epochs
        # Patched CE may splice exactly the eval rows (mod113): their codes, kept here, spare it an encode.
        codes = KeptCodes(len(self.behaviour.tokens)) if due else None
        metrics, counts = evaluate_members(sae, trainer.datamodule.eval_data, self.chunk_size, keep=codes)
        if self.truth is not None:
            metrics.update(ground_truth_columns(sae, trainer.datamodule.eval_data, self.truth, self.chunk_size))
        decoder = sae.decoder()
        self.rows = [r for r in self.rows if int(r["epoch"]) != epoch]
        logged = {}
        agreement = self.agreement.columns(epoch, {s: decoder[i] for i, s in enumerate(sae.member_seeds)}) \
            if self.agreement else {}
        behaviour = behaviour_columns(self.behaviour.losses(sae, codes), self.behaviour_resamples) \
            if due else [{}] * sae.n_members
        for member, seed in enumerate(sae.member_seeds):
            atomic_save_tensors(self.run.snapshot(seed, epoch),
                                {"decoder": decoder[member], "firing_counts": counts[member]})
            row = {"epoch": epoch, "step": trainer.global_step, "seed": seed, "member": member,
                   **{name: float(value[member]) for name, value in metrics.items()},
                   **behaviour[member], **agreement.get(seed, {}), **self.constant}
            self.rows.append(row)
            self.last[seed] = row
            logged.update({f"eval/seed{seed}/{name}": value for name, value in row.items()
                           if name not in ("epoch", "step", "seed", "member")})
        self.rows.sort(key=lambda r: (int(r["epoch"]), int(r["member"])))
        write_csv(self.run.metrics_csv, self.rows)
        for logger in trainer.loggers:
            logger.log_metrics({"epoch": epoch, **logged}, step=trainer.global_step)
