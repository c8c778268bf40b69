"""Entry point: `python train.py [-m] key=value ...` (see README.md)."""

from sae_lab.cli import main

if __name__ == "__main__":
    main()
