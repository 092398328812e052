# The two set-up commands from the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DB     ?= sqlite:///sendlab.db
PORT   ?= 8000

.PHONY: run test install lint bench clean

$(BIN)/sendlab: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/sendlab

install: $(BIN)/sendlab

run: install
	$(BIN)/sendlab demo --db $(DB) --html sendlab-demo.html
	$(BIN)/sendlab serve --db $(DB) --port $(PORT)

test: install
	$(BIN)/pytest -n 2

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python -m benchmarks.policies

clean:
	rm -rf $(VENV) *.egg-info sendlab.db sendlab.db-wal sendlab.db-shm
