# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CPU build from the local wheel cache; users with GPUs install their own torch first.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test test-all lint docs-lm bench reproduce-table1 reproduce-table2 reproduce-figure2 reproduce-figure2-quick \
	reproduce-figure1 reproduce-figure1-quick reproduce-figure1-auxk reproduce-20seed \
	reproduce-table3 reproduce-table4 reproduce-proxy-gap

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) train.py -m seed=1..5 budget=short

# The fast tier (every module, one end-to-end sweep into a report, the CLI's error sentences): minutes.
# Two pytest workers (pytest-xdist; a file's tests stay on one worker, so module fixtures are built once).
FAST := not slow and not slurm and not network and not gpu
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "$(FAST)" --durations=15

# Everything (what CI runs): adds SLURM (needs tests/slurm/cluster.sh and SAE_LAB_SLURM_TESTS=1), the SAELens
# interop venv (needs the package index), kill/signal runs, every preset and the long end-to-end runs.
test-all: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/agreement_speed.py

# The shipped language model, rebuilt from scratch (it ships; this is how it was made): the corpus from the
# Debian packages of the Python 3.11 and Django 3.2 documentation, ~1 h of CPU training, then its card.
docs-lm: $(STAMP)
	$(PY) scripts/build_docs_corpus.py --out sae_lab/data/corpora/docs
	$(PY) scripts/train_docs_lm.py --out sae_lab/models/weights/docs-lm
	$(PY) scripts/docs_lm_card.py --model-dir sae_lab/models/weights/docs-lm

reproduce-table1: $(STAMP)
	$(PY) scripts/table1.py

reproduce-table2: $(STAMP)
	$(PY) train.py experiment=table2

reproduce-figure2: $(STAMP)
	$(PY) train.py experiment=figure2

reproduce-figure2-quick: $(STAMP)
	$(PY) train.py experiment=figure2_quick

# MODEL=<model choice> [LAYER=<l>] [ARGS=<more overrides>]: the same two arms on that subject.
reproduce-figure1: $(STAMP)
	$(PY) train.py experiment=figure1 $(if $(MODEL),$(SUBJECT)) $(ARGS)

reproduce-figure1-quick: $(STAMP)
	$(PY) train.py experiment=figure1_quick

reproduce-figure1-auxk: $(STAMP)
	$(PY) train.py experiment=figure1_auxk

reproduce-20seed: $(STAMP)
	$(PY) train.py experiment=twenty_seeds

# Table 4. No MODEL: the paper's grid on Pythia-410M layer 21 (needs the weights and wikitext-103).
# MODEL=<model choice> [LAYER=<l>] [K=<k>] [ARGS=<more overrides>]: the same protocol with d_sae = 1.25/2.5/5/10 x the subject's
# erank; MODEL=hf MODEL_NAME=<local dir> DATASET=<local dataset dir> for any local causal LM.
# mod113 (d_sae 19..148) needs k <= 19, so its K defaults to 4.
ifeq ($(MODEL),mod113)
K ?= 4
endif
SUBJECT = model=$(MODEL) $(if $(LAYER),layer=$(LAYER)) $(if $(MODEL_NAME),model.name=$(MODEL_NAME)) \
	$(if $(DATASET),model.data.dataset=$(DATASET))
TABLE4_SUBJECT = $(SUBJECT) $(if $(K),k=$(K))

reproduce-table4: $(STAMP)
	$(PY) train.py $(if $(MODEL),experiment=table4_scaled $(TABLE4_SUBJECT),experiment=table4) $(ARGS)

# Table 3: the paper's five (model, layer) rows as three sweeps into one dir, then one report over all
# (-m: a command-line list such as layer=1,10 needs it even with a MULTIRUN preset).
ifndef TABLE3_DIR  # fixed once (:=), so the three sweeps share it
TABLE3_DIR := outputs/experiments/table3/$(shell date +%Y-%m-%d_%H-%M-%S)
endif
# MODEL=<model choice> LAYER=<l,l,...> [MODEL_NAME=<local dir>] [DATASET=<local dataset dir>]: one sweep of that
# subject's layers instead (run it again with the same TABLE3_DIR for another model); ARGS=<more overrides>.
reproduce-table3: $(STAMP)
ifdef MODEL
	$(PY) train.py -m experiment=table3 $(SUBJECT) $(ARGS) hydra.sweep.dir=$(TABLE3_DIR)
else
	@# every sweep runs even when an earlier one fails (say, one model's weights are missing); the report
	@# after each covers what the dir holds, and make fails at the end if any sweep did
	status=0; \
	$(PY) train.py -m experiment=table3 model=pythia-70m layer=0 $(ARGS) hydra.sweep.dir=$(TABLE3_DIR) || status=1; \
	$(PY) train.py -m experiment=table3 model=pythia-160m layer=1,10 $(ARGS) hydra.sweep.dir=$(TABLE3_DIR) || status=1; \
	$(PY) train.py -m experiment=table3 model=pythia-410m layer=2,21 $(ARGS) hydra.sweep.dir=$(TABLE3_DIR) || status=1; \
	exit $$status
endif

# The proxy-gap study. No MODEL: Pythia-70M and -410M at early/mid/late depth (the preset's 36 runs), then
# Pythia-160M at mid depth, into one dir. MODEL=<model choice> LAYER=<l,l,...> [MODEL_NAME=<local dir>]
# [DATASET=<local text dataset>] [KS=<k,k,...>]: experiment=proxy_gap_subject, the same protocol on that
# subject's own token data and layers (depth=null); run it
# again with the same PROXY_GAP_DIR for a second model: the report, rebuilt after each sweep, compares the
# models layer by layer. TOKENS=<n> sets the token budget per SAE; ARGS=<more overrides>.
ifndef PROXY_GAP_DIR
PROXY_GAP_DIR := outputs/experiments/proxy_gap/$(shell date +%Y-%m-%d_%H-%M-%S)
endif
PROXY_GAP_ARGS = $(if $(KS),k=$(KS)) $(if $(TOKENS),model.data.n_train_vectors=$(TOKENS)) $(ARGS) \
	hydra.sweep.dir=$(PROXY_GAP_DIR)
reproduce-proxy-gap: $(STAMP)
ifdef MODEL
	$(PY) train.py -m experiment=proxy_gap_subject $(SUBJECT) $(PROXY_GAP_ARGS)
else
	@# both sweeps run even when the first fails; make fails at the end if either did
	status=0; \
	$(PY) train.py -m experiment=proxy_gap $(PROXY_GAP_ARGS) || status=1; \
	$(PY) train.py -m experiment=proxy_gap model=pythia-160m depth=mid $(PROXY_GAP_ARGS) || status=1; \
	exit $$status
endif
