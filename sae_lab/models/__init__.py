"""Subject models behind one small protocol (protocol.py), each built from `conf/model/<name>.yaml`
by its `_target_`."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from sae_lab.models.protocol import Patch, SubjectModel


def build_subject(model: str | DictConfig | dict, device: str = "cpu") -> SubjectModel:
    """The subject named by a `conf/model` choice (e.g. "mod113") or given as a `_target_` node."""
    from sae_lab.config import CONF_DIR, ConfigError, group_choices
    from sae_lab.config import build_subject as instantiate_subject

    if isinstance(model, str):
        path = CONF_DIR / "model" / f"{model}.yaml"
        if not path.is_file():
            raise ValueError(f"model.name={model!r} is not a known subject model; allowed: "
                             f"{', '.join(group_choices('model'))}.")
        model = OmegaConf.load(path)
    try:
        return instantiate_subject(model, device=device)
    except ConfigError as err:
        raise ValueError(str(err)) from None


__all__ = ["Patch", "SubjectModel", "build_subject"]
