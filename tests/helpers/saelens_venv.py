"""SAELens in its own venv: sae-lens pins transformer-lens < 4, so it cannot be imported beside sae_lab.
`SAE_LAB_SAELENS_PYTHON` if set, else <repo>/.venv-saelens, created on first use (the interop test and
benchmarks/saelens_compare.py share it)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-saelens"
# torch first and pinned: sae-lens alone would pull the newest torch, a multi-GB CUDA build.
INSTALLS = (["torch==2.13.0"], ["sae-lens"])


def create_venv(venv: Path) -> None:
    """python3 -m venv + torch + sae-lens; `.complete` marks a finished install (a half-built venv is redone)."""
    subprocess.run(["python3", "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
    for packages in INSTALLS:
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *packages], check=True,
                       timeout=1800)
    (venv / ".complete").write_text("torch==2.13.0, sae-lens\n")


def saelens_python() -> Path:
    if os.environ.get("SAE_LAB_SAELENS_PYTHON"):
        return Path(os.environ["SAE_LAB_SAELENS_PYTHON"])
    if not (VENV / ".complete").is_file():
        create_venv(VENV)
    return VENV / "bin" / "python"
