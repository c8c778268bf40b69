"""sae_lab's whole default job against SAELens's trainer, whole process each, on the same activations.

    python benchmarks/saelens_compare.py [--repeats 3] [-- more train.py overrides]

sae_lab side: `python train.py budget=short progress=false` — 30 epochs of the default TopK SAE (d 128 ->
1,024, k 32, batch 256, Adam 3e-4) on the cached mod113 activations, with every per-epoch metric, the
cross-run files and patched CE at the budget's eval epochs. SAELens side (its own venv,
tests/helpers/saelens_venv.py, built on first use): benchmarks/saelens_trainer.py, SAELens's TopK SAE and
`SAETrainer` on the same activations for the same steps, training only (no evals). Each side is timed as
the user meets it, from process start to exit, with its peak RSS; the repeats alternate sides so that a
slow spell of the machine hits both. First runs of each (cache build, .pyc compilation) are not timed.
Prints medians and the ratio SAELens wall / sae_lab wall (> 1: sae_lab is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.helpers: the SAELens venv the interop test also uses


def run_child(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in GB, stdout) of one process, reaped here so that its own peak RSS is known."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd[:3])} ... exited {proc.returncode}:\n{err.read()[-2000:]}")
        return wall, usage.ru_maxrss / 2**20, out.read()


def export_activations(cache: Path, out: Path) -> None:
    """The cached mod113 activations the default job trains on, as one safetensors file for SAELens."""
    from safetensors.torch import save_file

    from sae_lab.data import subject_activations
    from sae_lab.models import build_subject

    subject = build_subject("mod113")
    acts = subject_activations(subject, subject.hook_name(subject.default_layer), cache)
    save_file({"acts": acts.contiguous()}, str(out))


def main() -> None:
    from tests.helpers.saelens_venv import saelens_python

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("overrides", nargs="*", help="more train.py overrides (after --)")
    args = ap.parse_args()
    peer = str(saelens_python())
    with tempfile.TemporaryDirectory() as tmp:
        cache, acts = Path(tmp) / "cache", Path(tmp) / "acts.safetensors"
        ours = [sys.executable, "train.py", "budget=short", "progress=false", f"cache_dir={cache}", *args.overrides]
        theirs = [peer, "benchmarks/saelens_trainer.py", str(acts)]
        run_child([*ours, f"hydra.run.dir={tmp}/warm"])  # builds the cache
        export_activations(cache, acts)
        print(run_child(theirs)[2].strip().splitlines()[-1])  # compiles SAELens's .pyc; shows its final MSE
        walls: dict[str, list[float]] = {"sae_lab": [], "SAELens": []}
        rss: dict[str, list[float]] = {"sae_lab": [], "SAELens": []}
        for i in range(args.repeats):
            for side, cmd in (("sae_lab", [*ours, f"hydra.run.dir={tmp}/run{i}"]), ("SAELens", theirs)):
                wall, peak, _ = run_child(cmd)
                walls[side].append(wall)
                rss[side].append(peak)
    med = {side: statistics.median(v) for side, v in walls.items()}
    print(f"whole process, median of {args.repeats} (interleaved); overrides: {' '.join(args.overrides) or 'none'}")
    for side in walls:
        print(f"  {side:<8} {med[side]:6.2f} s  (runs {', '.join(f'{w:.2f}' for w in walls[side])}), "
              f"peak RSS {statistics.median(rss[side]):.2f} GB")
    print(f"sae_lab is {med['SAELens'] / med['sae_lab']:.2f}x SAELens's speed (SAELens wall / sae_lab wall)")


if __name__ == "__main__":
    main()
