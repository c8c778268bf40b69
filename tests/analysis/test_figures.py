"""Report figures: they leave the user's matplotlib backend alone (and never import pyplot), and they
show what a reader needs without the code (checked on the figure objects, not on pixels)."""

import subprocess
import sys

import numpy as np
import pytest

from sae_lab.analysis.figures import matched_cosine_histogram, seed_heatmap, timescale_plot
from sae_lab.analysis.pairwise import random_matched_cosines
from sae_lab.metrics import evt_null

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
seed_heatmap([1, 2], np.array([[1.0, 0.5], [0.5, 1.0]]), "t", out / "heatmap.png", null=0.3)
matched_cosine_histogram(np.linspace(0, 1, 20), np.linspace(0, 0.5, 10), "t", out / "hist.png")
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


def test_heatmap_colour_scale_holds_the_null_and_the_values(tmp_path):
    """On the demo the values span 0.336–0.339: an auto-scaled colour bar would make that look dramatic."""
    values = np.array([[1.0, 0.336, 0.337], [0.336, 1.0, 0.339], [0.337, 0.339, 1.0]])
    null = evt_null(128, 1024)
    fig = seed_heatmap([1, 2, 3], values, "t", tmp_path / "h.png", null=null)
    low, high = fig.axes[0].images[0].get_clim()
    assert low == pytest.approx(null) and high == 1.0
    bar = fig.axes[1]
    assert "EVT null" in bar.get_ylabel()
    assert any(label.get_text().endswith("null") for label in bar.get_yticklabels())
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == ["0.336", "0.336", "0.337", "0.337", "0.339", "0.339"]
    below = seed_heatmap([1, 2], np.array([[1.0, 0.2], [0.2, 1.0]]), "t", tmp_path / "b.png", null=null)
    assert below.axes[0].images[0].get_clim() == (0.2, 1.0)  # a value under the null stays on the scale


def test_matched_cosine_histogram_shows_the_random_null(tmp_path):
    trained = np.linspace(0.2, 0.9, 300)
    null = random_matched_cosines(64, 16)
    assert null.shape == (64,) and 0 < null.min() and null.max() < 1
    np.testing.assert_array_equal(null, random_matched_cosines(64, 16))  # seeded
    fig = matched_cosine_histogram(trained, null, "t", tmp_path / "m.png")
    ax = fig.axes[0]
    handles, labels = ax.get_legend_handles_labels()
    assert labels[0].startswith("trained: 300 matched")
    assert labels[1] == "null: two random dictionaries of the same shape (64 pairs)"
    assert labels[2] == "stability thresholds 0.5 / 0.7 / 0.9"
    step = handles[1].get_xy()  # the null's outline: its heights are the null's density
    density, _ = np.histogram(null, bins=np.linspace(0, 1, 51), density=True)
    assert step[:, 1].max() == pytest.approx(density.max())
    assert fig.legends and ax.get_legend() is None  # the legend sits outside the axes


def test_timescale_plot_reads_without_the_code(tmp_path):
    rows = [{"epoch": e, "mse_mean": 4.0 / (1 + e), "mmcs": 0.5, "mmcs_ci_low": 0.45, "mmcs_ci_high": 0.55,
             "mmcs_null": 0.3, "ce_loss_score": 0.9} for e in (0, 1, 2, 5, 10)]
    fig = timescale_plot({"sae=relu": rows, "sae=topk": rows}, tmp_path / "t.png", {"sae=topk": {5}})
    ax_loss, ax_mmcs, ax_ce = fig.axes
    assert [t.get_text() for t in ax_ce.get_xticklabels()] == ["1", "2", "5", "10"]
    assert ax_ce.get_xlabel().startswith("epoch")
    assert ax_loss.get_ylabel() == "MSE ÷ MSE at epoch 1"
    assert all("first eval" not in ax.get_ylabel() for ax in fig.axes)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:2] == ["sae=relu", "sae=topk"]
    assert "95% seed-bootstrap CI of MMCS\n(none below 3 seeds)" in legend
    assert "EVT null: MMCS of random dictionaries (0.3000)" in legend
    assert "dead-feature resampling" in legend and "CE loss score 1 = subject's own loss" in legend
    # conditions that coincide stay visible: each has its own marker
    assert len({line.get_marker() for line in ax_loss.get_lines()}) == 2
    assert all(ax.get_legend() is None for ax in fig.axes)
