# The front door. `make demo` installs and runs `ferrograph demo`; `make test` installs what the
# tests need and runs them all (Rust and Python). Everything goes into ./.venv.

VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: install install-test browser demo test test-rust test-python bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "maturin>=1.7,<2"

# A dev (incremental) build of the extension into the venv.
install: $(PY)
	$(VENV)/bin/maturin develop --quiet

install-test: $(PY)
	$(VENV)/bin/maturin develop --quiet --extras test

# The browser tests of `ferrograph ui` drive Debian's chromium (never a downloaded browser);
# installed with apt-get (as root) when it is missing.
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

demo: install
	$(VENV)/bin/ferrograph demo

test-rust:
	cargo test --workspace

test-python: install-test browser
	$(PY) -m pytest -q

test: test-rust test-python

# Benchmarks need an optimised build; this rebuilds the extension in release mode.
bench: $(PY)
	$(VENV)/bin/maturin develop --quiet --release --extras bench
	$(PY) benchmarks/run.py
	$(PY) benchmarks/codec.py

clean:
	rm -rf $(VENV) target
