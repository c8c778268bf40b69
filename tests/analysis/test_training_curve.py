"""The training loss by step from Lightning's CSV logs (DB-KSVD's Figure 3 quantity), checked on hand-built
run dirs: attempts of a resumed run merged, runs of a condition averaged, the 1% reach step worked out by hand."""

import numpy as np
import pandas as pd

from sae_lab.analysis.conditions import Condition
from sae_lab.analysis.training_curve import condition_training_loss, reach_updates, training_loss_section
from sae_lab.artifacts import RunDir


def _log(path, steps, losses):
    """A CSVLogger file: train/loss rows and an eval row with no train/loss, as Lightning writes them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"step": s, "train/loss": v, "eval/seed1/fvu": np.nan} for s, v in zip(steps, losses, strict=True)]
    rows.append({"step": steps[-1], "train/loss": np.nan, "eval/seed1/fvu": 0.5})
    pd.DataFrame(rows).to_csv(path, index=False)


def test_a_resumed_runs_attempts_merge_with_the_later_value_kept(tmp_path):
    run = RunDir(tmp_path / "run")
    _log(run.logs_dir / "csv" / "metrics.csv", [0, 1, 2, 3, 4], [1.0, 0.9, 0.8, 0.7, 0.6])
    _log(run.logs_dir / "csv" / "resume1" / "metrics.csv", [3, 4, 5], [0.71, 0.61, 0.5])
    _log(run.logs_dir / "csv" / "resume2" / "metrics.csv", [5, 6], [0.49, 0.4])
    curve = run.training_loss()
    assert curve["step"].tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert curve["train_loss"].tolist() == [1.0, 0.9, 0.8, 0.71, 0.61, 0.49, 0.4]
    assert RunDir(tmp_path / "none").training_loss().empty
    (run.logs_dir / "csv" / "resume3").mkdir()
    (run.logs_dir / "csv" / "resume3" / "metrics.csv").write_bytes(b"")  # killed before its first write
    assert run.training_loss()["train_loss"].tolist()[-1] == 0.4


def test_condition_curve_is_the_mean_over_its_runs_at_shared_steps(tmp_path):
    a, b = RunDir(tmp_path / "a"), RunDir(tmp_path / "b")
    _log(a.logs_dir / "csv" / "metrics.csv", [0, 1, 2], [1.0, 0.5, 0.25])
    _log(b.logs_dir / "csv" / "metrics.csv", [1, 2, 3], [0.7, 0.35, 0.3])
    # seeds 1 and 2 share run a (an ensemble): it counts once
    curve = condition_training_loss(Condition("c", {}, members={1: a, 2: a, 3: b}))
    assert curve["updates"].tolist() == [2, 3]  # the loss after update n is logged at step n - 1
    assert np.allclose(curve["train_loss"], [0.6, 0.3])


def test_reach_updates_and_the_report_section(tmp_path):
    # loss 0.1 + 0.5^n after n updates (logged at step n - 1), n = 1..11: the last is 0.1 + 2^-11 = 0.100488;
    # within 1% means ≤ 0.101493, i.e. 0.5^n ≤ 0.001493: first at n = 10 (0.5^10 = 0.000977; 0.5^9 = 0.00195
    # is too large); within 5%: ≤ 0.105512, 0.5^n ≤ 0.005512: first at n = 8 (0.0039; 0.5^7 = 0.0078 no).
    updates = list(range(1, 12))
    losses = [0.1 + 0.5 ** n for n in updates]
    curve = pd.DataFrame({"updates": updates, "train_loss": losses})
    assert reach_updates(curve) == 10
    assert reach_updates(curve, within=0.05) == 8
    run = RunDir(tmp_path / "run")
    _log(run.logs_dir / "csv" / "metrics.csv", [n - 1 for n in updates], losses)
    lines = training_loss_section([Condition("ksvd", {}, members={1: run}),
                                   Condition("unlogged", {}, members={1: RunDir(tmp_path / "x")})], tmp_path)
    table = pd.read_csv(tmp_path / "training_loss.csv")
    assert table["condition"].unique().tolist() == ["ksvd"] and table["updates"].tolist() == updates
    assert np.allclose(table["train_loss"], losses)
    assert (tmp_path / "training_loss.png").stat().st_size > 0
    assert "| ksvd | 11 | 0.6 (after 1) | 0.1005 (after 11) | 10 |" in lines
    assert training_loss_section([Condition("unlogged", {}, members={1: RunDir(tmp_path / "x")})], tmp_path) == []
