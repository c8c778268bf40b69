"""Ctrl-C before a run has started: one line, never a traceback. Installed on the first line of the
command (train.py, sae-lab-train); a job puts Python's own handler back when it starts, so that
Lightning stops training cleanly and the resume command is printed."""

from __future__ import annotations

import os
import signal
import sys

INTERRUPTED_EXIT = 130  # the shell's code for "stopped by SIGINT"


def _before_start(signum: int, frame: object) -> None:
    sys.stderr.write("Interrupted before training started; no run was written.\n")
    sys.stderr.flush()
    os._exit(INTERRUPTED_EXIT)  # nothing is half-written yet, and no library code gets a say


def exit_quietly_on_sigint() -> None:
    signal.signal(signal.SIGINT, _before_start)


def restore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
