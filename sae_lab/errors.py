"""The errors sae_lab turns into one sentence: a bad setting (ConfigError, exit 2) and what the machine
does wrong with a path (an OSError: permission, a missing parent, a file where a folder should be, a full
disk, a read-only file system, too many open files)."""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

# Exit codes: 2 for a bad setting or a bad path given by the user (nothing was started); FAULT_EXIT when
# the machine failed a run already under way (what it wrote is whole; the sentence says how to resume).
BAD_SETTING_EXIT = 2
FAULT_EXIT = 3

_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted there",
    errno.ENOENT: "a folder on the way does not exist and cannot be created there",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EMFILE: "too many open files (raise the limit with `ulimit -n`)",
    errno.ENFILE: "too many open files on the system",
    errno.ENAMETOOLONG: "the name is too long",
}


class ConfigError(ValueError):
    """A bad config value; its message is one sentence naming the key and what is allowed."""


def os_reason(err: OSError) -> str:
    """What went wrong, in words (errno's own text for anything not listed)."""
    return _REASONS.get(err.errno, (err.strerror or type(err).__name__).lower())


def fault_sentence(err: OSError, resume: str | None = None) -> str:
    """One sentence for an OSError during a run: the path, why, and how to go on."""
    where = getattr(err, "filename2", None) or err.filename or "a file"  # a copy's target, not its source
    tail = f"; fix that and resume with: {resume}" if resume else "; fix that and run the command again"
    return f"the run stopped at {where}: {os_reason(err)}. What was already written is whole{tail}."


def check_writable_dir(path: str | Path, key: str) -> None:
    """ConfigError unless the folder `path` exists and is writable or can be created: tried by making (and
    removing) a temporary folder in its nearest existing parent, so nothing is left behind."""
    target = Path(path).expanduser().absolute()
    base = target
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise ConfigError(f"{key}={path} cannot be used: {base} is a file, not a folder; choose another path.")
    try:
        Path(tempfile.mkdtemp(prefix=".sae_lab_probe_", dir=base)).rmdir()
    except OSError as err:
        raise ConfigError(f"{key}={path} cannot be created or written ({os_reason(err)} in {base}); "
                          f"choose a writable folder.") from None
