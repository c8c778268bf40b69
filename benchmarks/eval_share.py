"""Where a default run's time goes: the share of evaluation and patched CE in `python train.py`.

    python benchmarks/eval_share.py [--repeats 3] [-- more train.py overrides]

Runs `python train.py budget=short progress=false` (the default job) in a fresh process per repeat, with
wall-clock timers around the parts that matter (no profiler, so Python-heavy code is not slowed more than
the kernels): the whole process, the imports before Hydra runs the job, the training steps, the
evaluation callback (metrics, snapshots, the activations' effective rank at the start) and, inside it,
patched CE (the subject's passes and the bootstrap CIs). Prints the median of the repeats and each part's
share of the whole process. The activation cache is built by a first, untimed run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs in the child: timers around the named functions, then train.py as `python train.py` runs it.
CHILD = r"""
import json, runpy, sys, time
start = time.perf_counter()
totals = {}

def timed(owner, name, key):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - t
    setattr(owner, name, wrapper)

import sae_lab.training.callbacks.eval_epoch as eval_epoch
import sae_lab.sae.module as module
import sae_lab.cli.job as job
imported = time.perf_counter() - start
timed(eval_epoch.EvalCallback, "on_train_start", "eval")
timed(eval_epoch.EvalCallback, "on_train_epoch_end", "eval")
timed(eval_epoch.PatchedCE, "losses", "patched_ce")
timed(eval_epoch, "behaviour_columns", "patched_ce")
timed(module.SAEModule, "training_step", "training_steps")
timed(job, "run_task", "job")
sys.argv = ["train.py", *sys.argv[1:]]
try:
    runpy.run_path("train.py", run_name="__main__")
except SystemExit as end:
    if end.code:
        raise
totals["whole"] = time.perf_counter() - start
totals["before_job"] = totals["whole"] - totals["job"]
totals["imports_of_the_job"] = imported
print("TIMES=" + json.dumps(totals))
"""


def one_run(overrides: list[str], cache: Path, out: Path) -> dict[str, float]:
    cmd = [sys.executable, "-c", CHILD, "budget=short", "progress=false", f"cache_dir={cache}",
           f"hydra.run.dir={out}", *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("TIMES="))
    return json.loads(line.removeprefix("TIMES="))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("overrides", nargs="*", help="more train.py overrides (after --)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        one_run(args.overrides, cache, Path(tmp) / "warm")  # builds the cache; not timed
        runs = [one_run(args.overrides, cache, Path(tmp) / f"run{i}") for i in range(args.repeats)]
    median = {key: statistics.median(r.get(key, 0.0) for r in runs) for key in runs[0]}
    whole = median["whole"]
    print(f"python train.py budget=short {' '.join(args.overrides)}: median of {args.repeats} runs")
    print(f"{'part':<42}{'seconds':>9}{'share':>8}")
    rows = [("whole process", "whole"), ("  imports and checks before the job starts", "before_job"),
            ("  training steps (SAEModule.training_step)", "training_steps"),
            ("  evaluation callback (all of it)", "eval"), ("    of which patched CE", "patched_ce")]
    for label, key in rows:
        print(f"{label:<42}{median.get(key, 0.0):>9.2f}{median.get(key, 0.0) / whole:>8.1%}")


if __name__ == "__main__":
    main()
