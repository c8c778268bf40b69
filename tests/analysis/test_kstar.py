"""k*(t) in the report: groups of conditions that differ only in k, from final-epoch CE_rec."""

import pytest

from sae_lab.analysis.conditions import Condition
from sae_lab.analysis.kstar import kstar_rows, kstar_table


def _cond(k, layer, ce_rec):
    name = f"k={k}, layer={layer}"
    return Condition(name=name, config={"k": k, "layer": layer}), {name: [{"epoch": 1, "ce_rec": 0.0},
                                                                         {"epoch": 2, "ce_rec": ce_rec}]}


def test_kstar_per_group_from_the_final_epoch():
    conds, traj = [], {}
    for k, layer, ce in [(8, 0, 0.80), (16, 0, 0.90), (8, 1, 0.70), (16, 1, 0.80), (4, 2, 0.9)]:
        c, t = _cond(k, layer, ce)
        conds.append(c)
        traj.update(t)
    rows = {(r["group"], r["target"]): r["k_star"] for r in kstar_rows(conds, traj)}
    assert rows[("layer=0", 0.85)] == pytest.approx(12.0)
    assert rows[("layer=0", 0.90)] == pytest.approx(16.0)
    assert rows[("layer=1", 0.85)] is None
    assert not any(g == "layer=2" for g, _ in rows)  # a single k: no k* for it
    assert "not reached" in kstar_table(kstar_rows(conds, traj))
