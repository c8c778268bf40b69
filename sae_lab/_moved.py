"""Old module paths of modules that moved into subpackages keep importing (and `python -m` keeps
running), so notebooks, scripts and the config.yaml of runs written before the move still work."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

MOVED = {
    "sae_lab.job": "sae_lab.cli.job",
    "sae_lab.hydra_report": "sae_lab.cli.hydra_callbacks",
    "sae_lab.report": "sae_lab.cli.report",
    "sae_lab.geometry": "sae_lab.cli.geometry",
    "sae_lab.analysis.report": "sae_lab.analysis.build",
    "sae_lab.help_text": "sae_lab.config.help_text",
    "sae_lab.subject_keys": "sae_lab.config.subject_keys",
    "sae_lab.experiment_keys": "sae_lab.config.experiment_keys",
    "sae_lab.devices": "sae_lab.config.devices",
    "sae_lab.erank_sizing": "sae_lab.training.erank_sizing",
    "sae_lab.train": "sae_lab.training.loop",
    "sae_lab.run_state": "sae_lab.training.run_state",
    "sae_lab.evaluation": "sae_lab.training.evaluation",
    "sae_lab.behaviour": "sae_lab.training.patched_ce",
    "sae_lab.resampling": "sae_lab.training.dead_features",
    "sae_lab.callbacks": "sae_lab.training.callbacks",
    "sae_lab.callbacks.agreement": "sae_lab.training.callbacks.cross_seed",
    "sae_lab.callbacks.evaluation": "sae_lab.training.callbacks.eval_epoch",
    "sae_lab.callbacks.resampling": "sae_lab.training.callbacks.resampler",
    "sae_lab.callbacks.checkpoint": "sae_lab.training.callbacks.checkpoint",
    "sae_lab.callbacks.preemption": "sae_lab.training.callbacks.preemption",
    "sae_lab.loggers": "sae_lab.integrations.loggers",
    "sae_lab.wandb_logger": "sae_lab.integrations.wandb_logger",
    "sae_lab.slurm": "sae_lab.integrations.slurm",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`import old` gives the new module itself (one module object, so classes stay identical);
    `python -m old` runs the new module's code."""

    def find_spec(self, name: str, path=None, target=None):  # noqa: ANN001 (the finder protocol)
        if name not in MOVED:
            return None
        return importlib.util.spec_from_loader(name, self, is_package=name == "sae_lab.callbacks")

    def create_module(self, spec) -> None:  # noqa: ANN001
        return None  # a placeholder module; exec_module puts the real one in its place

    def exec_module(self, module: ModuleType) -> None:
        # The import system returns whatever sys.modules holds under the name after exec_module.
        sys.modules[module.__name__] = importlib.import_module(MOVED[module.__name__])

    def get_code(self, name: str):  # noqa: ANN201 (runpy: `python -m sae_lab.report`)
        new = importlib.util.find_spec(MOVED[name])
        return new.loader.get_code(MOVED[name])


def install() -> None:
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.insert(0, _Alias())  # before a stale directory of the old name
