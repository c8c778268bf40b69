"""`--help`, `-sc`, `--cfg` and every config value the schema rejects answer without importing torch,
Lightning or transformers (they cost seconds; the answer needs only Hydra and the schema)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "lightning", "transformers", "transformer_lens", "pandas", "scipy", "matplotlib")
# Runs train.py as `python train.py ARGS` would, then says which heavy modules were imported.
PROBE = f"""
import runpy, sys
sys.argv = ["train.py", *sys.argv[1:]]
try:
    runpy.run_path("train.py", run_name="__main__")
except SystemExit as end:
    code = end.code
else:
    code = 0
print("HEAVY=" + ",".join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize(("args", "exit_code", "says"), [
    (["--help"], 0, "sae_lab"),
    (["-sc", "install=bash"], 0, ""),
    (["--cfg", "job"], 0, ""),
    (["k=0"], 2, "k must be between 1 and d_sae=1024, got 0."),
    (["d_sae=0"], 2, "d_sae must be an integer >= 1, got 0."),
    (["lr=fast"], 2, "lr must be a number, got 'fast'."),
    (["sae=foo"], 2, "sae=foo is not a known choice"),
    (["sae.aux_k=x"], 2, "sae.aux_k"),
    (["sae.l1_coefficient=0.1"], 2, "sae.l1_coefficient does not apply to sae=topk"),
    (["budget.epochs=0"], 2, "budget.epochs must be >= 1, got 0."),
    (["-m", "seed=1,x"], 2, "seed must be an integer, got 'x'."),
    (["-m", "seed=a..b"], 2, "seed=a..b is not a range"),
])
def test_answers_without_the_heavy_libraries(args, exit_code, says, tmp_path):
    proc = subprocess.run([sys.executable, "-c", PROBE, *args, f"hydra.run.dir={tmp_path}/run",
                           f"hydra.sweep.dir={tmp_path}/sweep"] if args[0] not in ("--help", "-sc", "--cfg")
                          else [sys.executable, "-c", PROBE, *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == exit_code, proc.stderr
    assert says in proc.stdout + proc.stderr
    assert "HEAVY=\n" in proc.stderr, proc.stderr.splitlines()[-1]
    assert "Traceback" not in proc.stderr
