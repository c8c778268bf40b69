"""The phantom-consistency detector on hand-made trajectories."""

import pytest

from sae_lab.analysis.phantom import phantom_episodes


def test_spike_then_decay_is_flagged():
    epochs = [0, 5, 9, 10, 11, 12, 15, 20, 30]
    mmcs = [0.30, 0.31, 0.32, 0.45, 0.40, 0.36, 0.33, 0.33, 0.34]
    [ep] = phantom_episodes(epochs, mmcs, events=[10])
    assert ep["event_epoch"] == 10 and ep["peak_epoch"] == 10
    assert ep["before"] == pytest.approx(0.32) and ep["peak"] == pytest.approx(0.45)
    assert ep["after"] == pytest.approx(0.33) and ep["rise"] == pytest.approx(0.13)


def test_lasting_rise_or_no_rise_is_not_flagged():
    epochs = [0, 9, 10, 12, 20]
    assert phantom_episodes(epochs, [0.30, 0.32, 0.45, 0.46, 0.47], events=[10]) == []  # learned, kept
    assert phantom_episodes(epochs, [0.30, 0.32, 0.322, 0.31, 0.30], events=[10]) == []  # too small
    assert phantom_episodes(epochs, [0.30, 0.32, 0.45, 0.44, 0.40], events=[10]) == []  # decays < 50%


def test_each_event_is_judged_up_to_the_next():
    epochs = list(range(0, 41, 2))
    mmcs = [0.3] * 5 + [0.4, 0.32, 0.31, 0.31, 0.31] + [0.31] * 5 + [0.42, 0.41, 0.41, 0.41, 0.41, 0.41]
    flagged = phantom_episodes(epochs, mmcs, events=[10, 30])
    assert [e["event_epoch"] for e in flagged] == [10]
