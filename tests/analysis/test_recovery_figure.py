"""recovery.png: agreement between seeds beside recovery of the truth, drawn only from conditions that have
ground-truth columns (checked on the figure object)."""

import numpy as np

from sae_lab.analysis.figures import recovery_plot


def test_recovery_plot_shows_agreement_beside_truth(tmp_path):
    rows = [{"epoch": e, "mmcs": 0.3 + 0.1 * e, "hungarian_mean": 0.2 + 0.1 * e, "gt_hungarian_mean": 0.4 + 0.1 * e,
             "gt_recovered_0.9": 0.1 * e, "gt_latent_error": 1.0 / (e + 1), "rel_error_norm": 0.5 / (e + 1)}
            for e in (0, 1, 2, 4)]
    without = [{"epoch": e, "mmcs": 0.5} for e in (0, 1, 2)]
    fig = recovery_plot({"ksvd": rows, "no truth": without}, tmp_path / "recovery.png")
    assert (tmp_path / "recovery.png").stat().st_size > 0
    seed_ax, truth_ax, latent_ax, rel_ax = fig.axes[:4]
    assert "seeds" in seed_ax.get_ylabel() and "true dictionary" in truth_ax.get_ylabel()
    assert len(seed_ax.lines) == 2 and len(truth_ax.lines) == 2 and len(latent_ax.lines) == 1  # one condition
    assert list(truth_ax.lines[0].get_xdata()) == [1, 2, 4]  # epoch 0 cannot sit on the log axis
    assert np.allclose(truth_ax.lines[0].get_ydata(), [0.5, 0.6, 0.8])
    assert "relative error" in rel_ax.get_ylabel() and np.allclose(rel_ax.lines[0].get_ydata(), [0.25, 0.5 / 3, 0.1])
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "ksvd" in labels and "no truth" not in labels
