# The two entry points of the project (see README): `make demo` and `make test`.
# Both create .venv when it is missing and install the package with the pinned CPU torch.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/perceptrons reproduce all --budget quick --out reports

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check perceptrons tests benchmarks
	$(VENV)/bin/ruff format --check perceptrons tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/trainer_overhead.py

clean:
	rm -rf $(VENV) reports *.egg-info
