"""Shared fixtures, and the markers that split the suite into `make test` (fast) and `make test-all`.

Markers are given here by path, for whole files and directories, so a test file says nothing about its
tier and moving a test between tiers is one line below. Helpers live in tests/helpers/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

# Paths under tests/ (a directory ends in "/", a single test is file::name) and the markers of every test in
# them; the first match wins.
MARKS: list[tuple[str, tuple[str, ...]]] = [
    ("e2e/test_slurm.py", ("slurm", "slow")),             # a real SLURM cluster: sweeps, requeue, arrays
    ("e2e/test_saelens_interop.py", ("network", "slow")),  # builds SAELens's own venv from the package index
    ("gpu/", ("gpu",)),                                   # CUDA paths (skip without a GPU)
    ("e2e/test_train_cli.py::test_submitit_launcher", ("slow",)),   # the submitit launcher (40 s)
    ("e2e/test_train_cli.py::test_ensemble_member", ("slow",)),     # two extra runs (33 s)
    ("e2e/test_train_cli.py::test_resume_keeps", ("slow",)),        # two extra runs (32 s)
    ("e2e/test_train_cli.py", ()),                        # fast: a smoke run, a 3-seed sweep, error sentences
    ("e2e/", ("slow",)),                                  # every other end-to-end run: kill/signal, presets, ...
    ("analysis/test_audit.py", ("slow",)),                # trains a 3-seed sweep in-process
    ("sae/test_toy_architecture.py", ("slow",)),          # trains a toy architecture end to end
    ("metrics/test_evt.py::test_within_three_standard_errors_of_monte_carlo[2304-16384]", ("slow",)),  # 1 min of MC
    ("data/test_cache_processes.py::test_cache_bigger_than_the_memory_budget", ("slow",)),  # a 30 s memory-bound build
    ("models/test_docs_lm.py::test_the_corpus_script_reproduces", ("slow",)),  # rebuilds the corpus (~30 s)
    ("docs/test_readme.py::test_readme_commands", ("slow",)),  # runs the README's commands (~3 min); links: fast
    ("faults/test_machine_faults.py::test_a_full_disk_mid_run", ("slow",)),  # a reference run and a resume (~40 s)
]


def marks_for(path: Path, name: str = "") -> tuple[str, ...]:
    """The markers of test `name` (as pytest names it, parameters included) in the file at `path`."""
    rel = path.resolve().relative_to(TESTS).as_posix()
    for prefix, marks in MARKS:
        if "::" in prefix:
            hit = f"{rel}::{name}".startswith(prefix)
        else:
            hit = rel == prefix or (prefix.endswith("/") and rel.startswith(prefix))
        if hit:
            return marks
    return ()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for mark in marks_for(item.path, item.name):
            item.add_marker(getattr(pytest.mark, mark))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")
