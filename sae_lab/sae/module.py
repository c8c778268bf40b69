"""The LightningModule that trains any MemberSAE: loss = sum over members of each member's MSE."""

from __future__ import annotations

import lightning as L
import torch

from sae_lab.sae.base import MemberSAE


class NonFiniteLossError(RuntimeError):
    pass


class SAEModule(L.LightningModule):
    """Manual optimisation keeps the step short: backward, project, Adam step, renormalise."""

    def __init__(self, sae: MemberSAE, lr: float, nan_check_every: int = 25, log_every: int = 10) -> None:
        super().__init__()
        self.sae = sae
        self.lr = float(lr)
        self.nan_check_every = int(nan_check_every)
        self.log_every = int(log_every)
        self.automatic_optimization = False

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # Adam is elementwise, so members stay independent.
        return torch.optim.Adam(self.sae.parameters(), lr=self.lr)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        opt = self.optimizers()
        per_member = self.sae.member_loss(batch)
        loss = per_member.sum()
        # A finite-check syncs a GPU; NaN weights stay NaN, so checking now and then is enough.
        if self.global_step % self.nan_check_every == 0 and not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"The training loss became {loss.item()} at step {self.global_step}; lower lr "
                f"(now {self.lr}) or check the activations for NaN/inf.")
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self.sae.remove_parallel_grad()
        opt.step()
        self.sae.after_step()
        if self.global_step % self.log_every == 0:  # self.log costs ~0.5 ms; the step ~4 ms
            self.log("train/mse", per_member.detach().mean(), prog_bar=True, on_step=True, on_epoch=False)
        return loss
