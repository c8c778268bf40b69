"""The small protocol every subject model implements (docs/extending.md, "Subject model protocol")."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol, runtime_checkable

import torch

# Maps the hook's activation at the trained positions [N, d_model] to its replacement.
Patch = Callable[[torch.Tensor], torch.Tensor]


class GroundTruth(NamedTuple):
    """What a subject with known structure (model=synthetic) offers: its true dictionary and, for each
    row of the held-out (eval) activations in order, the true latents. Optional: a subject that has it
    defines `ground_truth() -> GroundTruth`."""
    dictionary: torch.Tensor  # [n, d_model], true atoms as rows
    latents: torch.Tensor     # [N_eval, n]


@runtime_checkable
class SubjectModel(Protocol):
    name: str
    d_model: int
    n_layers: int

    def hook_name(self, layer: int, site: str | None = None) -> str:
        """TransformerLens hook name of `site` (default: the subject's configured site) in block `layer`."""
        ...

    def activations(self, batch: torch.Tensor, hook: str) -> torch.Tensor:
        """Activations [N, d_model] at `hook` for the positions the SAE is trained on."""
        ...

    def loss(self, batch: torch.Tensor, patch: Patch | None = None, hook: str | None = None) -> torch.Tensor:
        """Per-sequence cross-entropy [N]; with `patch`, the hook's activation is replaced first."""
        ...

    def scored_logprobs(self, batch: torch.Tensor, patch: Patch | None = None, hook: str | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probs [S, P', V] at the scored positions, their targets [S, P']), optionally patched."""
        ...

    def eval_dataset(self) -> torch.Tensor:
        """Held-out sequences (disjoint from `dataset()` except for mod113) for eval and behaviour."""
        ...

    def dataset(self) -> torch.Tensor:
        """The inputs whose activations are cached (token ids, one row per sequence)."""
        ...

    def data_spec(self) -> dict:
        """What `dataset()` is (name, positions, ...), part of every activation-cache key."""
        ...

    def fingerprint(self) -> str:
        """A short hash of the weights, part of every activation-cache key."""
        ...
