# Every target builds .venv first if it is missing; `make .venv` alone also works.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(VENV): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $(VENV)

demo: $(VENV)
	$(BIN)/veil demo --out veil-demo

test: $(VENV)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(VENV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(VENV)
	$(BIN)/python bench/ff1_micro.py

clean:
	rm -rf $(VENV) veil-demo build dist *.egg-info
