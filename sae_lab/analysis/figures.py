"""Report figures: timescale plot, seed × seed heatmap, matched-cosine histogram (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from sae_lab.artifacts import atomic_write

# Figure() needs no pyplot and savefig renders PNG with Agg itself: the user's (e.g. a notebook's) backend stays.


def _save(fig: Figure, path: Path) -> None:
    # The temp name ends in .tmp, so the format is given rather than guessed from the extension.
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120,
                                               bbox_inches="tight"))


def timescale_plot(trajectories: dict[str, list[dict]], path: Path,
                   events: dict[str, set[int]] | None = None) -> None:
    """Normalised reconstruction loss (mse / mse at the first trained eval), MMCS with the EVT null,
    and (where the runs measured it) behaviour: the CE loss score of the patched model, against
    epoch on a log axis (epoch 0, the initialisation, is left out of the log axis). Resampling
    events are dotted vertical lines in their condition's colour."""
    has_behaviour = any(np.isfinite(r.get("ce_loss_score", np.nan)) for rows in trajectories.values() for r in rows)
    fig = Figure(figsize=(7, 9.5 if has_behaviour else 7))
    axes = fig.subplots(3 if has_behaviour else 2, 1, sharex=True)
    ax_loss, ax_mmcs = axes[0], axes[1]
    for name, rows in trajectories.items():
        rows = [r for r in rows if r["epoch"] >= 1]
        if not rows:
            continue
        epochs = [r["epoch"] for r in rows]
        loss = np.array([r["mse_mean"] for r in rows])
        ax_loss.plot(epochs, loss / loss[0], marker="o", ms=3, label=name)
        if "mmcs" in rows[0]:
            mm = np.array([r.get("mmcs", np.nan) for r in rows])
            lo = np.array([r.get("mmcs_ci_low", np.nan) for r in rows])
            hi = np.array([r.get("mmcs_ci_high", np.nan) for r in rows])
            line, = ax_mmcs.plot(epochs, mm, marker="o", ms=3, label=name)
            ax_mmcs.fill_between(epochs, lo, hi, color=line.get_color(), alpha=0.2)
            ax_mmcs.axhline(rows[0]["mmcs_null"], color=line.get_color(), ls="--", lw=1)
            for epoch in sorted((events or {}).get(name, ())):
                ax_mmcs.axvline(epoch, color=line.get_color(), ls=":", lw=0.8, alpha=0.7)
        if has_behaviour:
            score = np.array([r.get("ce_loss_score", np.nan) for r in rows], dtype=float)
            shown = np.isfinite(score)
            axes[2].plot(np.array(epochs)[shown], score[shown], marker="o", ms=3, label=name)
    ax_loss.set_ylabel("reconstruction loss / first eval")
    ax_mmcs.set_ylabel("MMCS (dashed: EVT null; dotted: resampling)")
    if has_behaviour:
        axes[2].set_ylabel("CE loss score (1 = behaviour kept)")
        axes[2].axhline(1.0, color="grey", ls=":", lw=1)
    axes[-1].set_xlabel("epoch")
    axes[-1].set_xscale("log")
    ax_loss.legend(fontsize=7)
    ax_loss.set_title("Reconstruction converges; does cross-seed agreement?")
    _save(fig, path)


def seed_heatmap(seeds: list[int], matrix: np.ndarray, title: str, path: Path) -> None:
    fig = Figure(figsize=(1 + 0.45 * len(seeds), 0.8 + 0.45 * len(seeds)))
    ax = fig.subplots()
    shown = matrix.copy()
    np.fill_diagonal(shown, np.nan)
    im = ax.imshow(shown, cmap="viridis")
    ax.set_xticks(range(len(seeds)), [str(s) for s in seeds])
    ax.set_yticks(range(len(seeds)), [str(s) for s in seeds])
    ax.set_xlabel("seed")
    ax.set_ylabel("seed")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="MMCS")
    _save(fig, path)


def matched_cosine_histogram(values: np.ndarray, title: str, path: Path) -> None:
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.hist(values, bins=50, range=(0, 1), color="tab:blue")
    for t in (0.5, 0.7, 0.9):
        ax.axvline(t, color="grey", ls=":", lw=1)
    ax.set_xlabel("matched |cos| (decoder Hungarian, all seed pairs)")
    ax.set_ylabel("atoms")
    ax.set_title(title, fontsize=9)
    _save(fig, path)
