"""Entry point: `python train.py [-m] key=value ...` (see README.md)."""

from sae_lab.cli.interrupts import exit_quietly_on_sigint

exit_quietly_on_sigint()  # first: Ctrl-C while the libraries import is one line, not a traceback

from sae_lab.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
