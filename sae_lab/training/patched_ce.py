"""Patched CE: how much splicing each member's reconstruction into the subject changes what it
does, on the held-out sequences (docs/metrics.md, "Behaviour").

Per sequence: L_orig (the model), L_recon (the hook's activation replaced by the member's
reconstruction), L_zero (replaced by zeros), and KL(p_orig ‖ p_recon). From their means: CE_rec =
2 − L_recon/L_orig, CE loss score = (L_zero − L_recon)/(L_zero − L_orig), with 95% CIs from a paired
bootstrap over sequences. L_orig and L_zero do not change during training, so they are computed once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sae_lab.metrics.behaviour import ce_loss_score, ce_per_sequence, ce_rec, kl_per_sequence
from sae_lab.metrics.statistics import bootstrap_means, percentile_ci
from sae_lab.models.protocol import SubjectModel
from sae_lab.sae.base import MemberSAE
from sae_lab.training.evaluation import KeptCodes

# Keep the unpatched log-probs and residuals between evals when they are this small (mod113: 25 MB);
# larger held-out sets recompute them at every eval.
_KEEP_BYTES = 512 * 2**20
_CHUNK_BYTES = 256 * 2**20


@dataclass
class PatchedLosses:
    l_orig: torch.Tensor   # [S]
    l_zero: torch.Tensor   # [S]
    l_recon: torch.Tensor  # [E, S]
    kl: torch.Tensor       # [E, S]


class _SharedReconstruction:
    """Every member's reconstruction of the hook's clean activation, computed once per chunk: the
    patch of each member sees the same input (everything upstream of the hook is unpatched). With
    `kept` (an eval chunk's rows and codes from `evaluate_members`) and the input exactly those rows,
    the codes are decoded instead of encoding the rows again."""

    def __init__(self, sae: MemberSAE, kept: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> None:
        self.sae, self.kept, self.last_input, self.last_output = sae, kept, None, None

    def __call__(self, act: torch.Tensor) -> torch.Tensor:
        if self.last_input is None or not torch.equal(act, self.last_input):
            # a contiguous copy: the caller writes the patch into the tensor `act` is a view of, and a
            # kept eval chunk is contiguous, so either path encodes the same layout
            self.last_input = act.clone(memory_format=torch.contiguous_format)
            x = self.last_input.to(self.sae.W_dec.dtype)
            z = self._kept_codes(x)
            self.last_output = self.sae.reconstruct(x) if z is None else self.sae.decode(z)
        return self.last_output

    def _kept_codes(self, x: torch.Tensor) -> torch.Tensor | None:
        """encode(x) from the kept codes when x is bit for bit the rows they were found for, else None."""
        if self.kept is None:
            return None
        rows, values, indices = self.kept
        same = (rows.shape == x.shape and rows.dtype == x.dtype and rows.device == x.device
                and rows.is_contiguous() and torch.equal(rows, x))
        return self.sae.dense_codes(values, indices) if same else None


class PatchedCE:
    """Computes the patched losses of every member on fixed held-out `tokens` [S, T].

    The unpatched log-probs and, for resid_post hooks, the clean residual at the hook are computed
    once and kept while they fit `_KEEP_BYTES`; then each eval runs only the model downstream of
    the hook per member."""

    def __init__(self, subject: SubjectModel, hook: str, tokens: torch.Tensor, batch_size: int | None = None) -> None:
        self.subject, self.hook, self.tokens = subject, hook, tokens
        self.batch_size = int(batch_size) if batch_size else None  # None: sized from one sequence's log-probs
        self._kept: list[dict] | None = None  # per chunk: lp_orig, targets, residual
        self._l_orig: torch.Tensor | None = None
        self._l_zero: torch.Tensor | None = None

    def _chunks(self) -> list[torch.Tensor]:
        if self.batch_size is None:
            # [S, P', V] float32 log-probs per chunk near _CHUNK_BYTES: an LM's 50k vocabulary makes a
            # sequence ~25 MB at 128 positions, a mod113 input 452 bytes.
            lp, _ = self.subject.scored_logprobs(self.tokens[:1])
            self.batch_size = int(min(4096, max(1, _CHUNK_BYTES // (lp.numel() * lp.element_size()))))
        return [self.tokens[i:i + self.batch_size] for i in range(0, len(self.tokens), self.batch_size)]

    def _clean(self, chunk: torch.Tensor) -> dict:
        clean_pass = getattr(self.subject, "clean_pass", None)  # both from one forward where it can
        if clean_pass is not None:
            lp_orig, targets, residual = clean_pass(chunk, self.hook)
        else:
            lp_orig, targets = self.subject.scored_logprobs(chunk)
            residual = getattr(self.subject, "clean_residual", lambda *_: None)(chunk, self.hook)
        return {"lp_orig": lp_orig, "targets": targets, "residual": residual}

    def _logprobs(self, chunk: torch.Tensor, clean: dict, patch) -> torch.Tensor:
        extra = {} if clean["residual"] is None else {"residual": clean["residual"]}
        return self.subject.scored_logprobs(chunk, patch=patch, hook=self.hook, **extra)[0]

    @torch.no_grad()
    def losses(self, sae: MemberSAE, codes: KeptCodes | None = None) -> PatchedLosses:
        """Per-sequence losses of every member. `codes`: the eval set's codes from this same state of
        `sae` (evaluate_members), used for a chunk whose spliced activations are exactly the eval
        rows they were found for (mod113: chunk i's rows are eval rows i·batch_size onward)."""
        first = self._l_orig is None
        origs, zeros, recons, kls, kept = [], [], [], [], []
        for i, chunk in enumerate(self._chunks()):
            clean = self._kept[i] if self._kept is not None else self._clean(chunk)
            lp_orig, targets = clean["lp_orig"], clean["targets"]
            if first:
                origs.append(ce_per_sequence(lp_orig, targets).cpu())
                zeros.append(ce_per_sequence(self._logprobs(chunk, clean, torch.zeros_like), targets).cpu())
                kept.append(clean)
            rec, kl = [], []
            reconstruct = _SharedReconstruction(sae, codes.chunks.get(i * self.batch_size) if codes else None)
            for member in range(sae.n_members):
                def patch(act: torch.Tensor, member: int = member, reconstruct=reconstruct) -> torch.Tensor:
                    return reconstruct(act)[member]

                lp_rec = self._logprobs(chunk, clean, patch)
                rec.append(ce_per_sequence(lp_rec, targets).cpu())
                kl.append(kl_per_sequence(lp_orig, lp_rec).cpu())
            recons.append(torch.stack(rec))
            kls.append(torch.stack(kl))
        if first:
            self._l_orig, self._l_zero = torch.cat(origs), torch.cat(zeros)
            size = sum(t.numel() * t.element_size() for c in kept for t in c.values() if t is not None)
            self._kept = kept if size <= _KEEP_BYTES else None
        return PatchedLosses(self._l_orig, self._l_zero, torch.cat(recons, 1), torch.cat(kls, 1))


def behaviour_columns(losses: PatchedLosses, n_resamples: int = 1000, seed: int = 0) -> list[dict[str, float]]:
    """metrics.csv columns per member: the mean losses, CE_rec, CE loss score and KL, each of the last
    three with its 95% CI (paired bootstrap over sequences)."""
    out = []
    orig, zero = losses.l_orig.double().numpy(), losses.l_zero.double().numpy()
    for member in range(losses.l_recon.shape[0]):
        recon, kl = losses.l_recon[member].double().numpy(), losses.kl[member].double().numpy()
        means = np.array([orig.mean(), recon.mean(), zero.mean(), kl.mean()])
        boot = bootstrap_means(np.stack([orig, recon, zero, kl]), n_resamples=n_resamples, seed=seed)
        with np.errstate(divide="ignore", invalid="ignore"):
            derived = {"ce_rec": (ce_rec(means[0], means[1]), ce_rec(boot[:, 0], boot[:, 1])),
                       "ce_loss_score": (ce_loss_score(means[0], means[1], means[2]),
                                         ce_loss_score(boot[:, 0], boot[:, 1], boot[:, 2])),
                       "kl": (means[3], boot[:, 3])}
        row = {"ce_orig": float(means[0]), "ce_recon": float(means[1]), "ce_zero": float(means[2])}
        for name, (value, samples) in derived.items():
            low, high = percentile_ci(samples)
            row.update({name: float(value), f"{name}_ci_low": low, f"{name}_ci_high": high})
        out.append(row)
    return out
