"""Dead-feature resampling (Bricken et al. 2023, "Towards Monosemanticity"): which features to
revive and towards which inputs. Writing the new weights is the learner's `reinit_features`, which
knows its own thresholds and per-feature state.

Every `every_epochs` epochs, features that fired on none of the training inputs are re-initialised
towards inputs sampled with probability ∝ their squared reconstruction loss; the revived feature's
pre-activation on its input is the lower quartile of live activations. Candidates come from a pool
of `pool_size` training inputs drawn with `data_seed` (`shared`: identical for every seed) or with
the member's own seed (`seed`).
"""

from __future__ import annotations

import torch

from sae_lab.metrics import firing_counts
from sae_lab.sae.base import MemberSAE


def candidate_pool(n_inputs: int, pool_size: int, pool: str, data_seed: int, seed: int, epoch: int
                   ) -> tuple[torch.Tensor, torch.Generator]:
    """Indices of the candidate inputs and the generator that then samples among them."""
    base = data_seed if pool == "shared" else seed
    gen = torch.Generator().manual_seed(int(base) * 1_000_003 + int(epoch) + (0 if pool == "shared" else 7))
    return torch.randperm(n_inputs, generator=gen)[:pool_size], gen


@torch.no_grad()
def dead_features(sae: MemberSAE, data: torch.Tensor, chunk_size: int = 4096) -> torch.Tensor:
    """[E, d_sae] bool: features that fire on none of `data`."""
    counts = sum(firing_counts(sae(data[i:i + chunk_size]).codes) for i in range(0, len(data), chunk_size))
    return counts == 0


@torch.no_grad()
def resample_member(sae: MemberSAE, optimizer: torch.optim.Optimizer | None, member: int,
                    dead: torch.Tensor, candidates: torch.Tensor, gen: torch.Generator) -> int:
    """Re-initialise `member`'s dead features [d_sae] from `candidates` [P, d_model]; returns how many."""
    idx = dead.nonzero().flatten()
    if len(idx) == 0:
        return 0
    z, x_hat = sae(candidates)
    z, x_hat = z[member], x_hat[member]
    weights = (x_hat - candidates).pow(2).sum(-1).pow(2)
    weights = weights if weights.sum() > 0 else torch.ones_like(weights)
    chosen = torch.multinomial(weights.cpu(), len(idx), replacement=len(idx) > len(candidates), generator=gen)
    # The lower quartile of live activations: enough to fire on its input, not enough to crowd out
    # live features under TopK's fixed budget (with Bricken et al.'s 0.2 × encoder-norm rule, or the
    # median, alive fraction fell after an event).
    active = z[z > 0]
    level = active.kthvalue(max(1, len(active) // 4)).values if len(active) else torch.tensor(1.0)
    sae.reinit_features(member, idx, candidates[chosen.to(candidates.device)], level, optimizer)
    return len(idx)
