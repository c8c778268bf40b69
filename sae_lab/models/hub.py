"""Finding a Hugging Face model offline or online: the config, the cache, the Hub, and the
one-sentence errors when a model cannot be had here."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

HUB_PROBE_TIMEOUT_S = 3.0


class SubjectUnavailable(ValueError):
    """The subject model cannot be found or loaded; the message says what was looked for and what to do."""


def _looks_like_path(name: str) -> bool:
    """Hub ids are `name` or `owner/name`; anything else path-like is meant as a local path."""
    return (name.startswith(("/", "./", "../", "~", ".\\")) or name.endswith(("/", "\\")) or "\\" in name
            or name.count("/") > 1 or name in {".", ".."})


def _hub_offline_env() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether the Hugging Face Hub endpoint answers within `timeout` seconds (False under HF_HUB_OFFLINE)."""
    if _hub_offline_env():
        return False
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception:  # any transport failure means "not reachable now"
        return False
    return True


@contextlib.contextmanager
def hub_offline(enabled: bool = True):
    """Inside the block, huggingface_hub, transformers and datasets (if imported) use local files only,
    as under HF_HUB_OFFLINE=1 (their flags are read at import, so they are switched here in place)."""
    if not enabled:
        yield
        return
    from huggingface_hub import constants

    modules = [constants] + ([sys.modules["datasets.config"]] if "datasets.config" in sys.modules else [])
    before = [m.HF_HUB_OFFLINE for m in modules]
    for m in modules:
        m.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        for m, b in zip(modules, before, strict=True):
            m.HF_HUB_OFFLINE = b


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__).rstrip(".")


def download_hint(name: str) -> str:
    return f"download it on a networked machine with `hf download {name}` (or pass model.name=<local dir>)"



def read_hf_config(name: str) -> tuple[Any, Path | None, bool]:
    """(the HF config, the local model dir or None, whether to load offline) for a Hub name or a
    local dir; `SubjectUnavailable` with one sentence when neither the cache nor the Hub has it."""
    from transformers import AutoConfig

    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise SubjectUnavailable(
                f"model.name={name} is a local path but not a Hugging Face model directory (it has no "
                "config.json); pass a directory written by `save_pretrained` or a Hub model name.")
        local_dir = path.resolve()
        try:
            return AutoConfig.from_pretrained(str(local_dir), local_files_only=True), local_dir, False
        except Exception as err:
            raise SubjectUnavailable(
                f"model.name={name} has a config.json that transformers cannot read "
                f"({first_line(err)}); pass a directory written by `save_pretrained`.") from err
    if _looks_like_path(name):
        raise SubjectUnavailable(f"model.name={name} does not exist on this machine; pass an existing "
                                 "directory written by `save_pretrained` or a Hub model name like "
                                 "EleutherAI/pythia-70m.")
    try:  # the local cache first: no network
        config = AutoConfig.from_pretrained(name, local_files_only=True)
    except Exception:
        config = None
    reachable = None
    if config is None or not _hub_offline_env():
        reachable = hub_reachable()
    offline = not reachable
    if config is not None:
        return config, None, offline
    if _hub_offline_env():
        raise SubjectUnavailable(f"model.name={name} is not in the local Hugging Face cache and HF_HUB_OFFLINE "
                                 f"forbids the Hub; {download_hint(name)}.")
    if not reachable:
        raise SubjectUnavailable(f"model.name={name} is not in the local Hugging Face cache and the Hub cannot "
                                 f"be reached; {download_hint(name)}.")
    try:
        return AutoConfig.from_pretrained(name), None, offline
    except Exception as err:
        raise SubjectUnavailable(
            f"model.name={name} could not be fetched from the Hugging Face Hub ({first_line(err)}); check the "
            "name, or run `hf auth login` if the model is gated.") from err

