"""What sae_lab plugs into: loggers (loggers.py; W&B in wandb_logger.py) and SLURM (slurm.py)."""
