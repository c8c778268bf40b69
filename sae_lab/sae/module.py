"""The LightningModule that trains any MemberSAE: loss = sum over members of each member's loss
(+ the latent self-consistency term when its weight is on)."""

from __future__ import annotations

import lightning as L
import torch

from sae_lab.metrics.consistency import warmup_weight
from sae_lab.sae.base import MemberSAE


class NonFiniteLossError(RuntimeError):
    pass


class SAEModule(L.LightningModule):
    """Manual optimisation keeps the step short: backward, project, Adam step, renormalise."""

    def __init__(self, sae: MemberSAE, lr: float, nan_check_every: int = 25, log_every: int = 10,
                 consistency_weight: float = 0.0, consistency_start: int = 0, consistency_end: int = 0) -> None:
        super().__init__()
        self.sae = sae
        self.lr = float(lr)
        self.nan_check_every = int(nan_check_every)
        self.log_every = int(log_every)
        self.consistency = (float(consistency_weight), int(consistency_start), int(consistency_end))
        self.automatic_optimization = False

    def configure_optimizers(self) -> torch.optim.Optimizer | None:
        if not self.sae.trains_by_gradient:
            return None  # Lightning then steps a stand-in optimizer (see fit_step)
        # Adam is elementwise, so members stay independent. The fused kernel (one pass per tensor)
        # is ~20% faster than the default per-tensor loop on CPU and exists for CPU and CUDA.
        fused = all(p.device.type in ("cpu", "cuda") for p in self.sae.parameters())
        return torch.optim.Adam(self.sae.parameters(), lr=self.lr, fused=fused or None)

    def non_finite_message(self, per_member: torch.Tensor) -> str:
        """One sentence naming the member(s) whose loss is not finite (members never mix, so the
        others are unaffected; what they wrote so far stays in the run dir)."""
        bad = [i for i, ok in enumerate(torch.isfinite(per_member).tolist()) if not ok]
        value = per_member[bad[0]].item()
        tail = f"at step {self.global_step}; lower lr (now {self.lr}) or check the activations for NaN/inf."
        if self.sae.n_members == 1:
            return f"The training loss became {value} {tail}"
        seeds = self.sae.member_seeds
        who = ", ".join(f"member {i} (seed {seeds[i]})" for i in bad)
        kept = len(seeds) - len(bad)
        return (f"The training loss of {who} became {value} {tail[:-1]}; the other {kept} member(s)' metrics, "
                "snapshots and checkpoint so far are kept in the run dir.") if kept else \
            f"The training loss of every member became {value} {tail}"

    def consistency_weight(self) -> float:
        return warmup_weight(self.global_step, *self.consistency)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor | None:
        if not self.sae.trains_by_gradient:
            return self.fit_step(batch)
        opt = self.optimizers()
        weight = self.consistency_weight()
        self.sae.want_codes = weight > 0
        per_member, z = self.sae.member_loss(batch)
        if weight > 0:
            per_member = per_member + weight * self.sae.certificate(z)
        loss = per_member.sum()
        # A finite-check syncs a GPU; NaN weights stay NaN, so checking now and then is enough.
        if self.global_step % self.nan_check_every == 0 and not torch.isfinite(loss):
            raise NonFiniteLossError(self.non_finite_message(per_member.detach()))
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self.sae.remove_parallel_grad()
        opt.step()
        self.sae.after_step()
        if self.global_step % self.log_every == 0:  # self.log costs ~0.5 ms; the step ~4 ms
            self.log("train/loss", per_member.detach().mean(), prog_bar=True, on_step=True, on_epoch=False)
        return loss

    def fit_step(self, batch: torch.Tensor) -> None:
        """A learner without gradients (DB-KSVD) updates itself; stepping Lightning's stand-in optimizer
        only advances global_step, so steps count learner updates as they count Adam steps."""
        per_member = self.sae.fit_step(batch)
        if not bool(torch.isfinite(per_member).all()):  # one sync per learner update costs nothing here
            raise NonFiniteLossError(f"The training error became {per_member.tolist()} at step {self.global_step}; "
                                     "check the activations for NaN/inf.")
        self.optimizers().step()
        self.log("train/loss", per_member.mean(), prog_bar=True, on_step=True, on_epoch=False)


def plain_step(sae: MemberSAE, opt: torch.optim.Optimizer, x: torch.Tensor) -> None:
    """SAEModule's gradient step without Lightning (benchmarks and notebooks time the kernels alone)."""
    loss = sae.member_loss(x).loss.sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    sae.remove_parallel_grad()
    opt.step()
    sae.after_step()
