# Quick start: `make demo` (set up + run the Table 3 reanalysis on synthetic data), `make test`.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-slow bench browser clean

setup: $(STAMP) browser

# Debian's chromium renders the HTML report in its test (installed with apt-get when missing).
browser:
	@scripts/install-chromium

$(STAMP): pyproject.toml
	@py=$$(scripts/find-python) || exit 1; \
	  echo "Setting up $(VENV) with $$py"; \
	  [ -x $(BIN)/python ] || $$py -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(BIN)/bayes-pool run pooling-did --only table2,table3

test: setup
	$(BIN)/python -m pytest -m "not slow" --durations=15

test-slow: setup
	$(BIN)/python -m pytest -m slow

# Samplers on the benchmark DiD logit, the frequentist fit and each study's whole run
# (benchmarks/results/suite.md and .json); placebo and sensitivity have their own scripts.
bench: setup
	$(BIN)/python benchmarks/suite.py

clean:
	rm -rf $(VENV) .pytest_cache
