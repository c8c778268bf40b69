"""The package as a user installs it: a wheel (not an editable checkout) in a fresh venv, used from a
directory outside the checkout. The venv sees this interpreter's installed dependencies through a .pth
file instead of downloading them, and the wheel is installed with --no-index --no-deps: no network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.runs import ROOT


def _run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(WANDB_MODE="disabled", HYDRA_FULL_ERROR="0")
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh venv holding the wheel built from this checkout."""
    root = tmp_path_factory.mktemp("wheel")
    # built from a copy: setuptools writes build/ and *.egg-info into the source tree, and a stale build/ there
    # could put files into the wheel that the checkout no longer has
    source = root / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "outputs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"))
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                  "-w", str(root / "dist"), str(source)], cwd=root)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((root / "dist").glob("sae_lab-*.whl"))
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=False)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(env_dir), "platbase": str(env_dir)}))
    # The dependencies (torch, Lightning, ...) come from this interpreter's site-packages; its .pth files
    # (an editable sae_lab among them) are not processed from there, so `import sae_lab` finds the wheel.
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    install = _run([sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python"), "install",
                    "--no-index", "--no-deps", str(wheel)], cwd=root)
    assert install.returncode == 0, install.stderr[-2000:]
    return env_dir / "bin"


def test_the_wheel_ships_configs_and_data_and_imports_from_the_venv(installed, tmp_path):
    probe = _run([str(installed / "python"), "-c",
                  "import sae_lab, sae_lab.config as c; print(sae_lab.__file__); print(c.CONF_DIR); "
                  "print(sorted(p.name for p in (c.CONF_DIR / 'model').glob('*.yaml')))"], cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr[-2000:]
    module, conf, models = probe.stdout.splitlines()
    venv_dir = str(installed.parent)
    assert module.startswith(venv_dir) and conf.startswith(venv_dir), probe.stdout
    assert "mod113.yaml" in models and "hf.yaml" in models
    package = Path(conf).parent
    for shipped in ("models/weights/mod113.safetensors", "models/weights/docs-lm/model.safetensors",
                    "models/weights/docs-lm/card.json", "data/corpora/docs/train.npy", "data/corpora/docs/heldout.npy",
                    "data/corpora/docs/tokenizer/tokenizer.json", "data/corpora/docs/card.json"):
        assert (package / shipped).is_file(), shipped


def test_installed_commands_train_sweep_and_report_from_any_directory(installed, tmp_path):
    help_ = _run([str(installed / "sae-lab-train"), "--help"], cwd=tmp_path)
    assert help_.returncode == 0 and "budget" in help_.stdout, help_.stderr[-2000:]

    sweep = tmp_path / "sweep"
    proc = _run([str(installed / "sae-lab-train"), "-m", "seed=1..3", "budget=smoke", "progress=false",
                 f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(p for p in sweep.iterdir() if (p / "metrics.csv").is_file())
    assert len(runs) == 3
    assert sorted(pd.read_csv(r / "metrics.csv")["seed"].unique()[0] for r in runs) == [1, 2, 3]
    assert (tmp_path / "outputs" / "cache").is_dir()  # cache_dir is relative to where the user runs it
    assert (sweep / "report" / "summary.md").is_file()

    report = _run([str(installed / "sae-lab-report"), str(sweep), "--quiet"], cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "Report written to" in report.stdout

    single = _run([str(installed / "sae-lab-train"), "budget=smoke", "progress=false"], cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    assert len(list((tmp_path / "outputs" / "runs").glob("*/metrics.csv"))) == 1

    geometry = _run([str(installed / "sae-lab-geometry"), "layers=0", "n_vectors=2000"], cwd=tmp_path)
    assert geometry.returncode == 0, geometry.stderr[-2000:]
    assert len(list((tmp_path / "outputs" / "geometry").glob("*/geometry.csv"))) == 1
