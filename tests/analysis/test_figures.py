"""Building report figures leaves the user's matplotlib backend alone (and never imports pyplot)."""

import subprocess
import sys

# A fresh interpreter: in this one, sae_lab.analysis may already be imported, hiding an import-time switch.
SCRIPT = """
import sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("svg")  # stands in for a notebook's backend
import sae_lab.analysis  # noqa: F401
from sae_lab.analysis.figures import matched_cosine_histogram, seed_heatmap, timescale_plot

out = Path(sys.argv[1])
seed_heatmap([1, 2], np.array([[1.0, 0.5], [0.5, 1.0]]), "t", out / "heatmap.png")
matched_cosine_histogram(np.linspace(0, 1, 20), "t", out / "hist.png")
rows = [{"epoch": e, "mse_mean": 1.0 / e, "mmcs": 0.5, "mmcs_ci_low": 0.4, "mmcs_ci_high": 0.6, "mmcs_null": 0.3}
        for e in (1, 2, 4)]
timescale_plot({"c": rows}, out / "timescale.png", {"c": {2}})
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""


def test_figures_do_not_switch_the_backend(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["svg", "False"]
    for name in ("heatmap.png", "hist.png", "timescale.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heatmap.png", "hist.png", "timescale.png"]
