"""report/ holds exactly one report's files; figure names never collide; the search for runs skips virtual
environments, hidden folders and installed packages, and names the sweep dirs it combined."""

from __future__ import annotations

import pandas as pd
import yaml

from sae_lab.analysis import build_report
from sae_lab.analysis.build import figure_slug
from sae_lab.analysis.runs import find_run_dirs
from tests.helpers.hand_runs import make_run, random_decoder


def _cfg(seed: int, **keys) -> dict:
    return {"sae": {"architecture": "topk"}, "d_sae": 8, "seed": seed, "progress": False, **keys}


def _runs(root, name: str, seeds, **keys) -> None:
    for seed in seeds:
        make_run(root, f"{name}_s{seed}", _cfg(seed, **keys), {0: random_decoder(seed), 1: random_decoder(100 + seed)})


def test_a_second_report_leaves_none_of_the_first_reports_files(tmp_path):
    _runs(tmp_path, "a", (1, 2, 3), lr=0.001)
    _runs(tmp_path, "b", (1, 2, 3), lr=0.002)
    build_report(tmp_path, n_resamples=50, progress=False)
    first = {p.name for p in (tmp_path / "report").iterdir()}
    assert f"heatmap_{figure_slug('lr=0.002')}.png" in first
    for seed in (1, 2, 3):  # the lr=0.002 runs go away: their condition must leave the report
        for f in sorted((tmp_path / f"b_s{seed}").rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
        (tmp_path / f"b_s{seed}").rmdir()
    build_report(tmp_path, n_resamples=50, progress=False)
    second = {p.name for p in (tmp_path / "report").iterdir()}
    assert not any("0.002" in name for name in second), second
    assert pd.read_csv(tmp_path / "report" / "final.csv")["condition"].tolist() == ["all runs"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report")] == []  # no temp folder left


def test_conditions_differing_after_a_long_common_prefix_get_their_own_figures(tmp_path):
    long = "x" * 90
    _runs(tmp_path, "a", (1, 2), a_note=long, lr=0.001)
    _runs(tmp_path, "b", (1, 2), a_note=long, lr=0.002)
    _runs(tmp_path, "c", (1, 2), a_note="short", lr=0.001)
    summary = build_report(tmp_path, n_resamples=50, progress=False).read_text()
    names = pd.read_csv(tmp_path / "report" / "final.csv")["condition"].tolist()
    long_ones = [n for n in names if long in n]
    assert len(names) == 3 and len(long_ones) == 2 and long_ones[0][:80] == long_ones[1][:80]
    heatmaps = sorted(p.name for p in (tmp_path / "report").glob("heatmap_*.png"))
    assert heatmaps == sorted(f"heatmap_{figure_slug(n)}.png" for n in names)  # three files, one per condition
    for name in heatmaps:
        assert f"]({name})" in summary  # summary.md links each figure
    assert figure_slug(long_ones[0]) != figure_slug(long_ones[1])


def test_the_search_skips_venvs_hidden_folders_and_packages_and_names_the_sweeps_it_combined(tmp_path):
    for sweep, name, seeds in (("sweep_a", "a", (1, 2, 3)), ("sweep_b", "b", (1, 2))):
        (tmp_path / sweep).mkdir()
        (tmp_path / sweep / "multirun.yaml").write_text("hydra: {}\n")
        _runs(tmp_path / sweep, name, seeds, lr=0.001)
    venv = tmp_path / "venv"
    (venv / "lib/python3.11/site-packages/pkg/tests").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "lib/python3.11/site-packages/pkg/tests/config.yaml").write_text(yaml.safe_dump({"a": 1}))
    (tmp_path / "other/site-packages/x").mkdir(parents=True)
    (tmp_path / "other/site-packages/x/config.yaml").write_text("a: 1\n")
    (tmp_path / ".cache/run").mkdir(parents=True)
    (tmp_path / ".cache/run/config.yaml").write_text("a: 1\n")
    found = find_run_dirs(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "sweep_a/a_s1", "sweep_a/a_s2", "sweep_a/a_s3", "sweep_b/b_s1", "sweep_b/b_s2"]
    summary = build_report(tmp_path, n_resamples=50, progress=False).read_text()
    assert f"Runs combined from 2 sweep dirs: {tmp_path / 'sweep_a'}, {tmp_path / 'sweep_b'}." in summary
    runs = pd.read_csv(tmp_path / "report" / "runs.csv")
    assert len(runs) == 5 and (runs["status"] == "ok").all()
    one = build_report(tmp_path / "sweep_a", n_resamples=50, progress=False).read_text()
    assert "Runs combined from" not in one


def test_a_report_that_fails_keeps_the_previous_report_whole(tmp_path, monkeypatch):
    _runs(tmp_path, "a", (1, 2), lr=0.001)
    build_report(tmp_path, n_resamples=50, progress=False)
    before = {p.name: p.read_bytes() for p in (tmp_path / "report").iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("disk trouble")

    monkeypatch.setattr("sae_lab.analysis.build.atomic_write_text", broken)
    try:
        build_report(tmp_path, n_resamples=50, progress=False)
    except RuntimeError:
        pass
    assert {p.name: p.read_bytes() for p in (tmp_path / "report").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report")] == []
