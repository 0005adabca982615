# Production Worker Lab: two commands for learners (`make lab`) and CI (`make test`).
# Works on a fresh machine with only Python >= 3.11 and make; uses uv when present.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
KERNEL  := production-worker-lab
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: lab test test-real setup kernel browser-deps clean-state notebooks exercises grade-self-check bench help

help:
	@echo "make lab    - install into .venv, register the '$(KERNEL)' kernel, open JupyterLab"
	@echo "make kernel - register the kernel for a Jupyter outside .venv"
	@echo "make test   - same setup, then the whole test suite (what CI runs)"
	@echo "make bench  - engine latency/throughput benchmark"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@if command -v uv >/dev/null 2>&1; then \
		uv pip install --python $(BIN)/python -e '.[dev]'; \
	else \
		$(BIN)/python -m pip install -q --upgrade pip && $(BIN)/python -m pip install -q -e '.[dev]'; \
	fi
	@$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Production Worker Lab" >/dev/null
	@$(BIN)/python -m lab_support.launch --settings-only >/dev/null
	@touch $@

# For a Jupyter outside .venv (VS Code, a system JupyterLab): register the kernel per user.
kernel: $(STAMP)
	@$(BIN)/python -m ipykernel install --user --name $(KERNEL) --display-name "Production Worker Lab" >/dev/null
	@echo "Registered the '$(KERNEL)' kernel for your user: pick \"Production Worker Lab\" under Kernel > Change Kernel."

# JupyterLab on the repository root, opened on notebook 00; the server log goes to .lab/.
# LAB_IP=0.0.0.0 inside a container, LAB_PORT=..., LAB_NO_BROWSER=1, LAB_ARGS="--flag".
lab: $(STAMP)
	@$(BIN)/python -m lab_support.launch

# Browser tests use Debian's chromium (Playwright's own browser download fails offline).
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "browser-deps: could not install chromium; browser tests will be skipped"; \
	fi

# --durations: the slowest tests (the notebooks) with their times, so every CI log shows
# how long each notebook took on that machine.
test: $(STAMP) browser-deps
	$(BIN)/python -m pytest --durations=40 $(PYTEST_ARGS)

# The real-server lane: every notebook and solution on a real `inngest dev` (INNGEST_DEV, or an
# `inngest` binary on PATH started per notebook). Skips with the reason when there is neither.
test-real: $(STAMP)
	$(BIN)/python -m pytest -m real -rA $(PYTEST_ARGS) tests/test_real_server.py

# notebooks/*.md and solutions/*.md are the sources (jupytext pairs); exercises come from solutions/;
# the course home (notebooks/README.md) from every notebook's first cell.
notebooks: $(STAMP)
	$(BIN)/python -m lab_support.notebook_pairs
	$(BIN)/python -m lab_support.assign
	$(BIN)/python -m lab_support.course

exercises: $(STAMP)
	$(BIN)/python -m lab_support.assign

grade-self-check: $(STAMP)
	$(BIN)/python -m lab_support.grade --self-check --out .lab/grades

bench: $(STAMP)
	$(BIN)/python benchmarks/engine_latency.py

clean-state:
	rm -rf .lab
