# Two commands set everything up on a fresh machine:
#   make demo   create .venv, install, run the end-to-end demo on Fashion-MNIST (digits fallback)
#   make test   create .venv if needed, install, run the test suite
# Other targets: make bench | make docs | make clean

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := requirements/constraints.txt
STAMP_HASH := $(shell cat $(CONSTRAINTS) setup.cfg 2>/dev/null | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(STAMP_HASH)
FMNIST_DIR := /usr/share/datasets/fashion-mnist
DEMO_OUT ?= runs/demo
PYTEST_ARGS ?=

.PHONY: venv data browser demo test bench docs clean help

help:
	@sed -n '1,6p' Makefile

venv: $(STAMP)

$(STAMP): $(CONSTRAINTS) setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -c $(CONSTRAINTS) -e '.[test,docs,bench,timm]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Fashion-MNIST comes from Debian's dataset-fashion-mnist package (idx files, no internet needed).
data:
	@if [ -f $(FMNIST_DIR)/train-images-idx3-ubyte.gz ]; then \
	  echo "fashion-mnist: found in $(FMNIST_DIR)"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  echo "fashion-mnist: installing the Debian package dataset-fashion-mnist"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
	    || echo "fashion-mnist: apt-get failed; the demo falls back to scikit-learn's digits"; \
	else \
	  echo "fashion-mnist: not found. Install it with 'sudo apt-get install dataset-fashion-mnist'"; \
	  echo "  or pass --data-root DIR holding the *-ubyte.gz files. The demo falls back to digits."; \
	fi

# Headless Chromium renders report.html in tests/test_report.py (skipped, with the reason, without it).
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then \
	  echo "chromium: found"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  echo "chromium: installing the Debian package chromium (for the report's browser test)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	    || echo "chromium: apt-get failed; the report's browser test will be skipped"; \
	else \
	  echo "chromium: not found; install it with 'sudo apt-get install chromium' to run the"; \
	  echo "  report's browser test (it is skipped otherwise)."; \
	fi

demo: venv data
	$(PY) -m csg_interp demo --out $(DEMO_OUT)

test: venv data browser
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(PY) -m pytest --durations=25 $(PYTEST_ARGS)

bench: venv data
	$(PY) benchmarks/run_all.py --out docs/benchmarks.md

docs: venv
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf docs/_build docs/auto_examples docs/gen_modules docs/api .pytest_cache result_images

# The paper's CIFAR-10 / ResNet-20 row (docs/training-at-scale.md): DATA = the folder holding
# cifar-10-batches-py (or that folder itself); RECIPE = cpu (scaled, default) | gpu | smoke.
RECIPE ?= cpu
REPRO_OUT ?= runs/reproduce-cifar10
.PHONY: reproduce-cifar10
reproduce-cifar10: venv
	@test -n "$(DATA)" || { echo "usage: make reproduce-cifar10 DATA=DIR [RECIPE=cpu|gpu|smoke] [REPRO_OUT=$(REPRO_OUT)]"; exit 2; }
	$(PY) experiments/reproduce_cifar10.py --data-root "$(DATA)" --recipe $(RECIPE) --out "$(REPRO_OUT)"
