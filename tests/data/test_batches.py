"""Batch order depends on data_seed and epoch only; the position survives save/restore mid-epoch."""

import torch

from sae_lab.data import ShuffledBatches


def _data(n=1000, d=4):
    return torch.arange(n * d, dtype=torch.float32).view(n, d)


def _epoch(loader):
    out = []
    for batch in loader:
        loader.mark_consumed()
        out.append(batch)
    return out


def test_every_row_once_per_epoch_in_slices():
    data = _data()
    batches = _epoch(ShuffledBatches(data, 256, data_seed=0))
    assert [len(b) for b in batches] == [256, 256, 256, 232]
    rows = torch.cat(batches)[:, 0] / 4
    assert sorted(rows.long().tolist()) == list(range(1000))


def test_same_data_seed_same_order_other_seed_differs():
    data = _data()
    a, b, c = (ShuffledBatches(data, 100, s) for s in (5, 5, 6))
    for _ in range(2):
        ea, eb, ec = _epoch(a), _epoch(b), _epoch(c)
        assert all(torch.equal(x, y) for x, y in zip(ea, eb, strict=True))
        assert not torch.equal(ea[0], ec[0])
    # epochs differ from each other
    fresh = ShuffledBatches(data, 100, 5)
    assert not torch.equal(_epoch(fresh)[0], _epoch(fresh)[0])


def test_resume_mid_epoch_continues_the_same_sequence():
    data = _data()
    ref = ShuffledBatches(data, 100, 3)
    full = _epoch(ref) + _epoch(ref)

    first = ShuffledBatches(data, 100, 3)
    seen = _epoch(first)
    it = iter(first)
    for _ in range(4):
        seen.append(next(it))
        first.mark_consumed()
    next(it)  # Lightning prefetches one batch that is never trained on
    state = first.state_dict()

    resumed = ShuffledBatches(data, 100, 3)
    resumed.load_state_dict(state)
    seen += _epoch(resumed)
    assert len(seen) == len(full)
    assert all(torch.equal(x, y) for x, y in zip(seen, full, strict=True))
