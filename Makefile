# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CPU build from the local wheel cache; users with GPUs install their own torch first.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test lint bench reproduce-table1 reproduce-table2 reproduce-figure2 reproduce-figure2-quick \
	reproduce-figure1 reproduce-figure1-quick reproduce-figure1-auxk reproduce-20seed

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) train.py -m seed=1..5 budget=short

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/agreement_speed.py

reproduce-table1: $(STAMP)
	$(PY) scripts/table1.py

reproduce-table2: $(STAMP)
	$(PY) train.py experiment=table2

reproduce-figure2: $(STAMP)
	$(PY) train.py experiment=figure2

reproduce-figure2-quick: $(STAMP)
	$(PY) train.py experiment=figure2_quick

reproduce-figure1: $(STAMP)
	$(PY) train.py experiment=figure1

reproduce-figure1-quick: $(STAMP)
	$(PY) train.py experiment=figure1_quick

reproduce-figure1-auxk: $(STAMP)
	$(PY) train.py experiment=figure1_auxk

reproduce-20seed: $(STAMP)
	$(PY) train.py experiment=twenty_seeds
