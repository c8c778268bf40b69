# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CPU build from the local wheel cache; users with GPUs install their own torch first.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test lint bench reproduce-table1 reproduce-table2 reproduce-figure2 reproduce-figure2-quick \
	reproduce-figure1 reproduce-figure1-quick reproduce-figure1-auxk reproduce-20seed \
	reproduce-table3 reproduce-table4

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

# Table 4. No MODEL: the paper's grid on Pythia-410M layer 21 (needs the weights and wikitext-103).
# MODEL=<model choice> [LAYER=<l>] [K=<k>]: the same protocol with d_sae = 1.25/2.5/5/10 x the subject's
# erank; MODEL=hf MODEL_NAME=<local dir> DATASET=<local dataset dir> for any local causal LM.
# mod113 (d_sae 19..148) needs k <= 19, so its K defaults to 4.
ifeq ($(MODEL),mod113)
K ?= 4
endif
TABLE4_SUBJECT = model=$(MODEL) $(if $(LAYER),layer=$(LAYER)) $(if $(K),k=$(K)) \
	$(if $(MODEL_NAME),model.name=$(MODEL_NAME)) $(if $(DATASET),model.data.dataset=$(DATASET))

reproduce-table4: $(STAMP)
	$(PY) train.py $(if $(MODEL),experiment=table4_scaled $(TABLE4_SUBJECT),experiment=table4)

# Table 3: the paper's five (model, layer) rows as three sweeps into one dir, then one report over all
# (-m: a command-line list such as layer=1,10 needs it even with a MULTIRUN preset).
ifndef TABLE3_DIR  # fixed once (:=), so the three sweeps share it
TABLE3_DIR := outputs/experiments/table3/$(shell date +%Y-%m-%d_%H-%M-%S)
endif
reproduce-table3: $(STAMP)
	$(PY) train.py -m experiment=table3 model=pythia-70m layer=0 hydra.sweep.dir=$(TABLE3_DIR)
	$(PY) train.py -m experiment=table3 model=pythia-160m layer=1,10 hydra.sweep.dir=$(TABLE3_DIR)
	$(PY) train.py -m experiment=table3 model=pythia-410m layer=2,21 hydra.sweep.dir=$(TABLE3_DIR)
