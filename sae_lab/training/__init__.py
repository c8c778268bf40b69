"""Training: the loop (loop.py: `train(cfg, run_dir)`), its Lightning callbacks (callbacks/), evaluation
of members (evaluation.py), patched CE (patched_ce.py), dead-feature resampling (dead_features.py), what
a run dir already holds (run_state.py) and erank-sized dictionaries (erank_sizing.py).

Names are imported on first use, so that `import sae_lab.training.run_state` does not load Lightning."""

from importlib import import_module
from typing import Any

_LAZY = {"train": "loop", "evaluate_members": "evaluation", "EvalResult": "evaluation",
         "PatchedCE": "patched_ce", "behaviour_columns": "patched_ce"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"sae_lab.training.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'sae_lab.training' has no attribute {name!r}")
