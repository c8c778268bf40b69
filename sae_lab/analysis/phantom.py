"""Phantom consistency (paper §4.4): cross-seed MMCS that jumps within a few epochs of a dead-feature
resampling event and then decays — agreement made by the resampling, not learned."""

from __future__ import annotations

from collections.abc import Sequence


def phantom_episodes(epochs: Sequence[int], mmcs: Sequence[float], events: Sequence[int], window: int = 5,
                     min_rise: float = 0.01, min_decay_fraction: float = 0.5) -> list[dict]:
    """For each resampling epoch e: the MMCS before it (last eval epoch < e), the peak over eval
    epochs in [e, e + window], and the lowest value after the peak up to the next event (or the end).
    An episode is flagged when the peak rises by ≥ `min_rise` and then gives back at least
    `min_decay_fraction` of the rise."""
    points = sorted(zip(epochs, mmcs, strict=True))
    events = sorted(set(events))
    out = []
    for n, event in enumerate(events):
        before = [v for e, v in points if e < event]
        near = [(e, v) for e, v in points if event <= e <= event + window]
        if not before or not near:
            continue
        peak_epoch, peak = max(near, key=lambda p: p[1])
        horizon = events[n + 1] if n + 1 < len(events) else float("inf")
        later = [v for e, v in points if peak_epoch < e < horizon]
        rise = peak - before[-1]
        if rise < min_rise or not later:
            continue
        low = min(later)
        if peak - low >= min_decay_fraction * rise:
            out.append({"event_epoch": event, "before": before[-1], "peak_epoch": peak_epoch, "peak": peak,
                        "after": low, "rise": rise, "decay": peak - low})
    return out
