"""Files that ship inside the package (subject weights, token corpora) and their checksums.

`${shipped:<path>}` in a config is the absolute path of `sae_lab/<path>` wherever the package is
installed (a checkout or site-packages), so a yaml can name shipped files without knowing where they are.

A directory of shipped files may carry a `card.json` whose "sha256" maps each file (relative path) to
its digest; `verify_card(dir)` checks them and stops with one sentence naming the first missing or
damaged file and the digest it should have. Loaders call it before any work (sae_lab.models.hf for a
model directory, sae_lab.data.tokens for a token-stream directory), so any local directory with such a
card is checked the same way, shipped or not.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CARD = "card.json"


class DamagedFileError(ValueError):
    """A file listed in a card.json is missing or its sha256 differs; the message names it."""


def shipped_path(relative: str) -> str:
    """The absolute path of `sae_lab/<relative>` (the `${shipped:...}` config resolver)."""
    return str(PACKAGE_DIR / relative)


def sha256_of(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks (never more than that in memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def card_checksums(directory: Path) -> dict[str, str]:
    """{relative path: sha256} from the directory's card.json ({} when it has none or lists none)."""
    card = Path(directory) / CARD
    if not card.is_file():
        return {}
    try:
        return dict(json.loads(card.read_text()).get("sha256", {}))
    except (json.JSONDecodeError, AttributeError) as err:
        raise DamagedFileError(f"{card} is not a readable card ({err}); restore it from the package.") from None


def verify_card(directory: str | Path) -> None:
    """Check every file the directory's card.json lists against its sha256 (see the module docstring)."""
    directory = Path(directory)
    for name, expected in card_checksums(directory).items():
        path = directory / name
        if not path.is_file():
            raise DamagedFileError(f"{path} is missing (expected sha256 {expected}); reinstall sae_lab or restore "
                                   "the file.")
        if sha256_of(path) != expected:
            raise DamagedFileError(f"{path} is damaged: its sha256 is not the card's {expected}; reinstall sae_lab "
                                   "or restore the file.")


__all__ = ["DamagedFileError", "card_checksums", "sha256_of", "shipped_path", "verify_card"]
