# Every target builds .venv first if it is missing; `make .venv` alone also works.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test fuzz lint bench clean

$(VENV): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $(VENV)

demo: $(VENV)
	$(BIN)/veil demo --out veil-demo

# The suite runs on every core (pytest-xdist); `pytest` alone runs it in one process.
test: $(VENV)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n auto

# Property-based fuzzing of every input parser, 10,000 examples per target (see tests/fuzzing.py).
fuzz: $(VENV)
	VEIL_FUZZ_EXAMPLES=10000 $(BIN)/python -m pytest -m fuzz

lint: $(VENV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# `make bench BENCH_ARGS="--rows 100000"` passes options to bench/run.py (see its --help).
bench: $(VENV)
	$(BIN)/python -c "import presidio_anonymizer, presidio_analyzer" 2>/dev/null || $(BIN)/pip install --quiet -c constraints.txt -e ".[bench]"
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) veil-demo build dist *.egg-info
