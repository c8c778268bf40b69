"""`python tests/helpers/kill_driver.py WHEN train.py ARGS...` (or `... WHEN -m sae_lab.cli.report DIR`): run sae_lab
as a user would, but SIGKILL the process at one chosen moment, so tests can hit the instants a timer
cannot (half a file written, mid-step):

    replace:NAME:N   the N-th time a file named NAME is about to be renamed into place: its temp file is
                     complete, the rename has not happened (atomic_write's window, and the cache's shards)
    step:N           at the start of training step N (mid-epoch when N is not a multiple of the epoch)
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def kill_at_replace(name: str, nth: int) -> None:
    real = os.replace
    seen = {"n": 0}

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == name:
            seen["n"] += 1
            if seen["n"] == nth:
                die()
        return real(src, dst, *args, **kwargs)

    os.replace = replace


def kill_at_step(step: int) -> None:
    from sae_lab.sae.module import SAEModule

    real = SAEModule.training_step

    def training_step(self, batch, batch_idx):
        if self.global_step == step:
            die()
        return real(self, batch, batch_idx)

    SAEModule.training_step = training_step


def main() -> None:
    when, *command = sys.argv[1:]
    kind, _, rest = when.partition(":")
    if kind == "replace":
        name, _, nth = rest.rpartition(":")
        kill_at_replace(name, int(nth))
    elif kind == "step":
        kill_at_step(int(rest))
    else:
        raise SystemExit(f"unknown moment {when!r}")
    sys.path.insert(0, str(ROOT))
    if command[0] == "-m":
        sys.argv = [command[1], *command[2:]]
        runpy.run_module(command[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = command
        runpy.run_path(str(ROOT / command[0]), run_name="__main__")


if __name__ == "__main__":
    main()
