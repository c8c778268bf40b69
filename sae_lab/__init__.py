"""sae_lab: training dynamics and cross-seed reproducibility of sparse dictionaries."""

from sae_lab._moved import install as _install_moved_paths

__version__ = "0.1.0"

_install_moved_paths()
