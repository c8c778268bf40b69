"""`make <target> VAR=value ...` from the repo root, as a user types it, for the e2e tests of the
reproduce-* targets."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers.runs import ROOT


def run_make(target: str, *variables: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run `make target VARIABLES` with this interpreter as the Makefile's $(PY); `-o` keeps make from
    (re)installing the virtual environment, which the test run already has."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "WANDB_MODE": "disabled"}
    return subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", target, f"PY={sys.executable}",
                           *variables], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
