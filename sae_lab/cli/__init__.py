"""The command line: `python train.py` / `sae-lab-train` (train_command.py; its overrides read in overrides.py,
its config judged before any dir exists in prevalidation.py), one Hydra job (job.py), the
sweep-end report hook (hydra_callbacks.py), `sae-lab-report` (report.py), `sae-lab-geometry`
(geometry.py) and Ctrl-C before a run starts (interrupts.py).

Light on purpose: importing this package loads nothing else, so the Ctrl-C handler is in place before
Hydra and the rest are imported."""

from importlib import import_module
from typing import Any

__all__ = ["check_overrides", "main", "prepare_argv", "rewrite_ranges"]


def main() -> None:
    """`sae-lab-train` (= `python train.py`)."""
    from sae_lab.cli.interrupts import exit_quietly_on_sigint

    exit_quietly_on_sigint()
    import_module("sae_lab.cli.train_command").main()


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module("sae_lab.cli.overrides"), name)
    raise AttributeError(f"module 'sae_lab.cli' has no attribute {name!r}")
