"""The command line: `python train.py` / `sae-lab-train` (train_command.py), one Hydra job (job.py), the
sweep-end report hook (hydra_callbacks.py), `sae-lab-report` (report.py) and `sae-lab-geometry`
(geometry.py)."""

from sae_lab.cli.train_command import check_overrides, main, prepare_argv, rewrite_ranges

__all__ = ["check_overrides", "main", "prepare_argv", "rewrite_ranges"]
