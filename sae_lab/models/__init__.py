"""Subject models behind one small protocol (protocol.py)."""

from __future__ import annotations

from sae_lab.models.protocol import Patch, SubjectModel


def build_subject(name: str, device: str = "cpu") -> SubjectModel:
    """Build the subject model named by the `model` config group."""
    if name == "mod113":
        from sae_lab.models.mod113 import Mod113

        return Mod113(device=device)
    raise ValueError(f"model.name={name!r} is not a known subject model; allowed: mod113.")


__all__ = ["Patch", "SubjectModel", "build_subject"]
