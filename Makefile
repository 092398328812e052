# The two set-up commands from the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DB     ?= sqlite:///sendlab.db
PORT   ?= 8000

.PHONY: run test install browser lint bench clean

$(BIN)/sendlab: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/sendlab

install: $(BIN)/sendlab

run: install
	$(BIN)/sendlab demo --db $(DB) --html sendlab-demo.html
	$(BIN)/sendlab serve --db $(DB) --port $(PORT)

# Browser tests drive Debian's Chromium; install it when missing and we are root (else they skip).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); } \
	  || echo "chromium is not installed: the browser tests will skip"

test: install browser
	$(BIN)/pytest -n 2

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python -m benchmarks.policies

clean:
	rm -rf $(VENV) *.egg-info sendlab.db sendlab.db-wal sendlab.db-shm
