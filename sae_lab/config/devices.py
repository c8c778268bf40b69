"""Which torch device a config's `device` names, and whether this machine's PyTorch can use it."""

from __future__ import annotations

from sae_lab.errors import ConfigError


def device_available(device: str) -> str:
    """The torch device `device` names (`auto`: cuda when visible, else cpu); ConfigError, one sentence,
    when this machine's PyTorch cannot use it."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if index >= n:
            raise ConfigError(f"device={device} was asked for but this machine's PyTorch sees "
                              f"{n or 'no'} CUDA device(s); use device=cpu or device=auto.")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device=mps was asked for but this PyTorch has no usable MPS backend (Apple GPUs "
                          "only); use device=cpu or device=auto.")
    return device
