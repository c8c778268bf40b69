"""Condition names read like the user's overrides (`sae=relu, k=16`), and keys that do not change the
experiment (execution keys) never split a condition nor appear in its name."""

from __future__ import annotations

from sae_lab.analysis import group_conditions, load_runs
from tests.helpers.hand_runs import make_run, random_decoder


def _cfg(arch, k, seed, **execution):
    return {"sae": {"architecture": arch}, "k": k, "d_sae": 8, "seed": seed,
            "budget": {"name": "smoke", "epochs": 2, "checkpoint_every": 1}, **execution}


def test_names_read_like_overrides(tmp_path):
    for arch in ("relu", "topk"):
        for k in (2, 4):
            make_run(tmp_path, f"{arch}_{k}", _cfg(arch, k, 1), {0: random_decoder(k)})
    names = [c.name for c in group_conditions(load_runs(tmp_path))]
    assert names == ["sae=relu, k=2", "sae=relu, k=4", "sae=topk, k=2", "sae=topk, k=4"]


def test_execution_keys_never_split_conditions_nor_name_them(tmp_path):
    plain = {"logger": {"name": "csv"}, "progress": True, "device": "cpu", "cache_dir": "outputs/cache",
             "trainer": {"precision": "32-true"}}
    other = {"logger": {"_target_": "lightning.pytorch.loggers.TensorBoardLogger", "name": "tensorboard"},
             "progress": False, "device": "cuda", "cache_dir": "/scratch/cache", "trainer": {"precision": "bf16"}}
    for arch in ("relu", "topk"):
        make_run(tmp_path, f"{arch}_1", _cfg(arch, 2, 1, **plain), {0: random_decoder(1)})
        cfg = _cfg(arch, 2, 2, **other)
        cfg["budget"]["checkpoint_every"] = 5
        make_run(tmp_path, f"{arch}_2", cfg, {0: random_decoder(2)})
    conditions = group_conditions(load_runs(tmp_path))
    assert [(c.name, sorted(c.members)) for c in conditions] == [("sae=relu", [1, 2]), ("sae=topk", [1, 2])]
