"""Report figures: timescale plot, seed × seed heatmap, matched-cosine histogram (PNG). Each function saves
its figure and returns it, so tests can check what it shows (limits, series, labels) without pixels."""

from __future__ import annotations

import textwrap
from itertools import cycle
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

from sae_lab.artifacts import atomic_write
from sae_lab.metrics.agreement import STABILITY_THRESHOLDS

# Figure() needs no pyplot and savefig renders PNG with Agg itself: the user's (e.g. a notebook's) backend stays.

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")  # with the markers, conditions that coincide stay distinguishable


def _save(fig: Figure, path: Path) -> None:
    # The temp name ends in .tmp, so the format is given rather than guessed from the extension.
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120))


def _wrap(title: str, width: int = 60) -> str:
    return textwrap.fill(title, width)


def epoch_axis(ax: Axes, epochs: list[int]) -> None:
    """Log epoch axis labelled with plain epoch numbers (1, 2, 5, 10), not 10^0 or 2×10^0."""
    ax.set_xscale("log")
    ticks = sorted(set(epochs))
    ax.xaxis.set_major_locator(FixedLocator(ticks) if len(ticks) <= 10 else LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("epoch (log scale; epoch 0, the initialisation, is in summary.md)")


def _trained(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["epoch"] >= 1]


def _loss_label(trajectories: dict[str, list[dict]]) -> str:
    firsts = {_trained(rows)[0]["epoch"] for rows in trajectories.values() if _trained(rows)}
    at = f"epoch {firsts.pop()}" if len(firsts) == 1 else "each condition's first trained epoch"
    return f"MSE ÷ MSE at {at}"


def _null_lines(ax, nulls: dict[str, tuple[float, str]]) -> list:
    """One black dashed line when every condition has the same EVT null, else one per condition colour."""
    values = {round(v, 12) for v, _ in nulls.values()}
    if len(values) == 1:
        value = next(iter(nulls.values()))[0]
        ax.axhline(value, color="black", ls="--", lw=1, zorder=2)
        return [Line2D([], [], color="black", ls="--", label=f"EVT null: MMCS of random dictionaries ({value:.4f})")]
    for value, colour in nulls.values():
        ax.axhline(value, color=colour, ls="--", lw=1, zorder=2)
    return [Line2D([], [], color="grey", ls="--", label="EVT null: MMCS of random dictionaries (condition colour)")]


def _mmcs_panel(ax, rows: list[dict], style: dict, events: set[int]) -> tuple[float, str] | None:
    if "mmcs_null" not in rows[0] or not any("mmcs" in r for r in rows):
        return None
    epochs = [r["epoch"] for r in rows]
    ax.fill_between(epochs, [r.get("mmcs_ci_low", np.nan) for r in rows], [r.get("mmcs_ci_high", np.nan) for r in rows],
                    color=style["color"], alpha=0.15, lw=0, zorder=1)
    ax.plot(epochs, [r.get("mmcs", np.nan) for r in rows], **style, zorder=3)
    for epoch in sorted(events):
        ax.axvline(epoch, color=style["color"], ls=":", lw=0.8, alpha=0.7, zorder=2)
    return rows[0]["mmcs_null"], style["color"]


def timescale_plot(trajectories: dict[str, list[dict]], path: Path,
                   events: dict[str, set[int]] | None = None) -> Figure:
    """Normalised reconstruction loss, cross-seed MMCS with its CI band and the EVT null, and (where the
    runs measured it) the CE loss score of the patched model, against epoch on a log axis (epoch 0 cannot
    sit on it). Resampling events are dotted vertical lines in their condition's colour."""
    has_behaviour = any(np.isfinite(r.get("ce_loss_score", np.nan)) for rows in trajectories.values() for r in rows)
    fig = Figure(figsize=(9, 9.5 if has_behaviour else 7), layout="constrained")
    axes = fig.subplots(3 if has_behaviour else 2, 1, sharex=True)
    ax_loss, ax_mmcs = axes[0], axes[1]
    colours = cycle(f"C{i}" for i in range(10))
    handles, nulls, all_epochs, any_event = [], {}, set(), False
    for n, (name, rows) in enumerate(trajectories.items()):
        rows = _trained(rows)
        if not rows:
            continue
        style = {"color": next(colours), "marker": MARKERS[n % len(MARKERS)], "ms": 5, "alpha": 0.85,
                 "ls": LINESTYLES[n // len(MARKERS) % len(LINESTYLES)], "lw": 1.5}
        epochs = [r["epoch"] for r in rows]
        all_epochs |= set(epochs)
        loss = np.array([r["mse_mean"] for r in rows], dtype=float)
        ax_loss.plot(epochs, loss / loss[0], **style, zorder=3)
        handles.append(Line2D([], [], **style, label=name))
        cond_events = (events or {}).get(name, set())
        null = _mmcs_panel(ax_mmcs, rows, style, cond_events)
        if null:
            nulls[name] = null
            any_event |= bool(cond_events)
        if has_behaviour:
            score = np.array([r.get("ce_loss_score", np.nan) for r in rows], dtype=float)
            shown = np.isfinite(score)
            axes[2].plot(np.array(epochs)[shown], score[shown], **style, zorder=3)
    keys = [Patch(color="grey", alpha=0.3, label="95% seed-bootstrap CI of MMCS\n(none below 3 seeds)")]
    keys += _null_lines(ax_mmcs, nulls) if nulls else []
    keys += [Line2D([], [], color="grey", ls=":", label="dead-feature resampling")] if any_event else []
    ax_loss.set_ylabel(_loss_label(trajectories))
    ax_mmcs.set_ylabel("MMCS across seeds")
    if has_behaviour:
        axes[2].axhline(1.0, color="grey", ls=":", lw=1, zorder=0)
        keys.append(Line2D([], [], color="grey", ls=":", lw=1, label="CE loss score 1 = subject's own loss"))
        axes[2].set_ylabel("CE loss score")
    for ax in axes:
        ax.grid(alpha=0.3)
    if all_epochs:
        epoch_axis(axes[-1], sorted(all_epochs))
    fig.legend(handles=handles + keys, loc="outside right upper", fontsize=8, title="condition", title_fontsize=8,
               alignment="left")
    ax_loss.set_title("Reconstruction converges; does cross-seed agreement?")
    _save(fig, path)
    return fig


def _colour_ticks(null: float, vmin: float) -> list[float]:
    """Round ticks on the colour bar plus the null itself, none so close to the null that labels collide."""
    ticks = [t for t in np.arange(0.0, 1.01, 0.1) if t >= vmin - 1e-9 and abs(t - null) > 0.04]
    return sorted([*ticks, null])


def seed_heatmap(seeds: list[int], matrix: np.ndarray, title: str, path: Path, null: float) -> Figure:
    """Seed × seed MMCS at one epoch. The colour scale runs from the EVT null (or the lowest value, if
    lower) to 1, so seeds that agree no better than random dictionaries look alike, not dramatic."""
    n = len(seeds)
    fig = Figure(figsize=(max(5.0, 2.5 + 0.5 * n), max(4.0, 1.5 + 0.5 * n)), layout="constrained")
    ax = fig.subplots()
    shown = np.array(matrix, dtype=float)
    np.fill_diagonal(shown, np.nan)
    finite = shown[np.isfinite(shown)]
    vmin = min(null, float(finite.min())) if finite.size else null
    im = ax.imshow(shown, cmap="viridis", vmin=vmin, vmax=1.0)
    if n <= 12:  # the numbers, since nearby values share one colour on an honest scale
        for i, j in zip(*np.nonzero(np.isfinite(shown)), strict=True):
            ax.text(j, i, f"{shown[i, j]:.3f}", ha="center", va="center", fontsize=7,
                    color="white" if shown[i, j] < (vmin + 1) / 2 else "black")
    ax.set_xticks(range(n), [str(s) for s in seeds])
    ax.set_yticks(range(n), [str(s) for s in seeds])
    ax.set_xlabel("seed")
    ax.set_ylabel("seed")
    ax.set_title(_wrap(f"{title} (diagonal left blank)", 45), fontsize=9)
    bar = fig.colorbar(im, ax=ax, ticks=_colour_ticks(null, vmin))
    labels = [f"{t:.3f} null" if np.isclose(t, null) else f"{t:.1f}" for t in bar.get_ticks()]
    bar.ax.set_yticklabels(labels, fontsize=7)
    bar.ax.axhline(null, color="red", lw=1.5)
    bar.set_label("MMCS; colours run from the EVT null\n(random dictionaries, red) to 1 (identical)", fontsize=8)
    _save(fig, path)
    return fig


def matched_cosine_histogram(values: np.ndarray, null_values: np.ndarray, title: str, path: Path) -> Figure:
    """Matched |cos| of the decoder Hungarian over all seed pairs, beside the same for two random
    dictionaries of the same shape; both as densities, since they hold different numbers of atoms."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.subplots()
    bins = np.linspace(0.0, 1.0, 51)
    ax.hist(values, bins=bins, density=True, color="tab:blue", alpha=0.7,
            label=f"trained: {len(values)} matched atom pairs over all seed pairs")
    ax.hist(null_values, bins=bins, density=True, histtype="step", color="black", lw=1.5,
            label=f"null: two random dictionaries of the same shape ({len(null_values)} pairs)")
    for n, t in enumerate(STABILITY_THRESHOLDS):
        ax.axvline(t, color="grey", ls=":", lw=1,
                   label="stability thresholds " + " / ".join(map(str, STABILITY_THRESHOLDS)) if n == 0 else None)
    ax.set_xlabel("matched |cos| of decoder atoms (one-to-one Hungarian matching)")
    ax.set_ylabel("density (each histogram has area 1)")
    ax.set_title(_wrap(title), fontsize=9)
    fig.legend(loc="outside lower center", fontsize=8, ncols=1)
    _save(fig, path)
    return fig


def recovery_plot(trajectories: dict[str, list[dict]], path: Path) -> Figure:
    """Beside each other against epoch: cross-seed agreement (MMCS, Hungarian), recovery of the true dictionary
    (mean matched |cos|, fraction of true atoms above 0.9) and the latent recovery error, for the conditions
    whose runs had a ground truth (model=synthetic), and the mean relative reconstruction error (DB-KSVD's
    Figure 3). Agreement between seeds means little until it is set against agreement with the truth, so
    the panels share the epoch axis and the |cos| scale."""
    fig = Figure(figsize=(18, 4.5), layout="constrained")
    ax_seed, ax_truth, ax_latent, ax_rel = fig.subplots(1, 4, sharex=True)
    colours = cycle(f"C{i}" for i in range(10))
    handles, all_epochs = [], set()
    for n, (name, rows) in enumerate(trajectories.items()):
        rows = [r for r in _trained(rows) if np.isfinite(r.get("gt_hungarian_mean", np.nan))]
        if not rows:
            continue
        colour, marker = next(colours), MARKERS[n % len(MARKERS)]
        epochs = [r["epoch"] for r in rows]
        all_epochs |= set(epochs)

        def series(key: str, rows=rows) -> list[float]:
            return [r.get(key, np.nan) for r in rows]

        ax_seed.plot(epochs, series("mmcs"), color=colour, marker=marker, ms=4)
        ax_seed.plot(epochs, series("hungarian_mean"), color=colour, marker=marker, ms=4, ls="--")
        ax_truth.plot(epochs, series("gt_hungarian_mean"), color=colour, marker=marker, ms=4)
        ax_truth.plot(epochs, series("gt_recovered_0.9"), color=colour, marker=marker, ms=4, ls=":")
        ax_latent.plot(epochs, series("gt_latent_error"), color=colour, marker=marker, ms=4)
        ax_rel.plot(epochs, series("rel_error_norm"), color=colour, marker=marker, ms=4)
        handles.append(Line2D([], [], color=colour, marker=marker, label=name))
    keys = [Line2D([], [], color="grey", label="MMCS (left) / mean matched |cos| to the truth (middle)"),
            Line2D([], [], color="grey", ls="--", label="Hungarian mean across seeds"),
            Line2D([], [], color="grey", ls=":", label="fraction of true atoms matched above |cos| 0.9")]
    ax_seed.set_ylabel("agreement between seeds")
    ax_truth.set_ylabel("recovery of the true dictionary")
    ax_latent.set_ylabel("latent recovery error ‖x_m − x‖₂ (mean)")
    ax_rel.set_ylabel("mean relative error ‖y − ŷ‖₂ / ‖y‖₂")
    for ax in (ax_seed, ax_truth):
        ax.set_ylim(0, 1.02)
    for ax in (ax_seed, ax_truth, ax_latent, ax_rel):
        ax.grid(alpha=0.3)
        if all_epochs:
            epoch_axis(ax, sorted(all_epochs))
    fig.legend(handles=handles + keys, loc="outside lower center", fontsize=8, ncols=2)
    fig.suptitle("Do seeds agree because they find the truth?")
    _save(fig, path)
    return fig
