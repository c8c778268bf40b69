"""sae_lab: training dynamics and cross-seed reproducibility of sparse dictionaries."""

__version__ = "0.1.0"
