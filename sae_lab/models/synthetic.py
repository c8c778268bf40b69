"""A subject with no network and a known answer: x_p = W_p x + noise.

W_p [d, n] has unit columns: an i.i.d. Gaussian matrix mixed with one shared direction of weight ρ
(larger ρ, more coherent columns), each column normalised. Each latent x ∈ R^n is exactly k-sparse: k
coordinates uniformly without replacement, amplitudes uniform in [amplitude_low, amplitude_high].
Everything is drawn from the subject's own `seed`, so the data is identical for every SAE seed. It keeps
W_p and the latents (`ground_truth()`), so every eval can score recovery of both.

It plays a subject model for the rest of sae_lab: one "layer" whose hook is the observation x_p; its
training rows are samples 0..n_samples-1 and its held-out rows the next n_eval. There is no network,
so patched CE (behaviour) does not apply and is skipped.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import NamedTuple

import torch

from sae_lab.models.protocol import GroundTruth, Patch

HOOK = "x_p"
GENERATOR_VERSION = 1  # part of the cache key: bump when the generator changes
_CHUNK = 8192


class SyntheticData(NamedTuple):
    mixing: torch.Tensor      # W_p [d, n]
    support: torch.Tensor     # [N, k] latent indices per sample
    amplitudes: torch.Tensor  # [N, k]
    observations: torch.Tensor  # x_p [N, d]


def mixing_matrix(d: int, n: int, rho: float, gen: torch.Generator) -> torch.Tensor:
    """W_p [d, n]: column j = normalise((1 − ρ) g_j / √d + ρ u), g_j ~ N(0, I_d), u a shared unit vector."""
    g = torch.randn(d, n, generator=gen) / d ** 0.5
    u = torch.randn(d, 1, generator=gen)
    w = (1 - rho) * g + rho * u / u.norm()
    return w / w.norm(dim=0, keepdim=True)


def generate(d: int, n: int, k: int, rho: float, amplitude_low: float, amplitude_high: float, noise: float,
             n_total: int, seed: int) -> SyntheticData:
    gen = torch.Generator().manual_seed(int(seed))
    w = mixing_matrix(d, n, rho, gen)
    # k of n without replacement: the k smallest of n uniforms, in chunks (N × n floats would not fit)
    support = torch.cat([torch.rand(min(_CHUNK, n_total - s), n, generator=gen).topk(k, dim=-1).indices
                         for s in range(0, n_total, _CHUNK)])
    amplitudes = amplitude_low + (amplitude_high - amplitude_low) * torch.rand(n_total, k, generator=gen)
    x_p = torch.einsum("nk,nkd->nd", amplitudes, w.T[support]) + noise * torch.randn(n_total, d, generator=gen)
    return SyntheticData(w, support, amplitudes, x_p)


class Synthetic:
    """Subject-model protocol for the blind-mixing toy: see the module docstring."""

    n_layers = 1
    default_layer = 0
    no_behaviour = "model=synthetic has no network whose loss a patched activation could change"

    def __init__(self, name: str = "synthetic", d: int = 64, n_latents: int = 256, k: int = 4, rho: float = 0.0,
                 amplitude_low: float = 0.5, amplitude_high: float = 1.0, noise: float = 0.0,
                 n_samples: int = 16384, n_eval: int = 4096, seed: int = 0,
                 device: str | torch.device = "cpu") -> None:
        for key, value, low in (("d", d, 1), ("n_latents", n_latents, 1), ("k", k, 1), ("n_samples", n_samples, 1),
                                ("n_eval", n_eval, 1), ("seed", seed, 0)):
            if int(value) != value or value < low:
                raise ValueError(f"model.{key} must be an integer >= {low}, got {value}.")
        if k > n_latents:
            raise ValueError(f"model.k must be at most model.n_latents={n_latents}, got {k}.")
        if not 0 <= rho <= 1:
            raise ValueError(f"model.rho must be between 0 and 1, got {rho}.")
        if not 0 <= amplitude_low <= amplitude_high or noise < 0:
            raise ValueError(f"model.amplitude_low and model.amplitude_high must satisfy 0 <= low <= high and "
                             f"model.noise must be >= 0, got {amplitude_low}, {amplitude_high} and {noise}.")
        self.name = name
        self.spec = {"d": int(d), "n_latents": int(n_latents), "k": int(k), "rho": float(rho),
                     "amplitude_low": float(amplitude_low), "amplitude_high": float(amplitude_high),
                     "noise": float(noise), "n_samples": int(n_samples), "n_eval": int(n_eval), "seed": int(seed)}
        self.d_model = int(d)
        self.device = torch.device(device)

    @cached_property
    def data(self) -> SyntheticData:
        """Generated on first use (validation only reads the shape)."""
        s = self.spec
        return generate(s["d"], s["n_latents"], s["k"], s["rho"], s["amplitude_low"], s["amplitude_high"],
                        s["noise"], s["n_samples"] + s["n_eval"], s["seed"])

    def fingerprint(self) -> str:
        text = json.dumps({**self.spec, "generator": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def hook_name(self, layer: int, site: str | None = None) -> str:
        if layer != 0:
            raise ValueError(f"layer={layer} is out of range; model=synthetic has one layer, 0 (its observations).")
        return HOOK

    def data_spec(self) -> dict:
        return {"dataset": "synthetic-blind-mixing", "generator": GENERATOR_VERSION, **self.spec}

    def dataset(self) -> torch.Tensor:
        """Sample ids of the training rows, [n_samples, 1]."""
        return torch.arange(self.spec["n_samples"])[:, None]

    def eval_dataset(self) -> torch.Tensor:
        """Sample ids of the held-out rows, [n_eval, 1] (disjoint from the training ids)."""
        n = self.spec["n_samples"]
        return torch.arange(n, n + self.spec["n_eval"])[:, None]

    def activations(self, batch: torch.Tensor, hook: str) -> torch.Tensor:
        if hook != HOOK:
            raise ValueError(f"hook {hook!r} does not exist in model=synthetic; its one hook is {HOOK!r}.")
        return self.data.observations[batch[:, 0].cpu()].to(self.device)

    def latents(self, ids: torch.Tensor) -> torch.Tensor:
        """The true latents x [len(ids), n] of sample ids."""
        ids = ids.reshape(-1).cpu()
        x = torch.zeros(len(ids), self.spec["n_latents"])
        return x.scatter_(-1, self.data.support[ids], self.data.amplitudes[ids])

    def ground_truth(self) -> GroundTruth:
        """W_p's columns as atoms [n, d] and the latents of the held-out rows, in eval order."""
        return GroundTruth(self.data.mixing.T.contiguous(), self.latents(self.eval_dataset()))

    def scored_logprobs(self, batch: torch.Tensor, patch: Patch | None = None, hook: str | None = None):
        raise NotImplementedError(f"{self.no_behaviour}.")

    def loss(self, batch: torch.Tensor, patch: Patch | None = None, hook: str | None = None) -> torch.Tensor:
        raise NotImplementedError(f"{self.no_behaviour}.")
