# The front door. `make demo` installs and runs `ferrograph demo`; `make test` installs what the
# tests need and runs them all (Rust and Python). Everything goes into ./.venv.

VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: install install-test browser pgbouncer demo test test-rust test-python test-containers bench clean

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

# The reliability tests put Debian's pgbouncer in front of the test Postgres (transaction pooling);
# installed with apt-get (as root) when it is missing.
pgbouncer:
	@test -x /usr/sbin/pgbouncer || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer; }

demo: install
	$(VENV)/bin/ferrograph demo

test-rust:
	cargo test --workspace

test-python: install-test browser pgbouncer
	$(PY) -m pytest -q

test: test-rust test-python

# The Postgres-dependent tests with no FERROGRAPH_TEST_POSTGRES_URL, so the fixtures start Postgres
# through testcontainers, on an image built from Debian's packages (no registry needed; as root:
# scripts/postgres-image.sh installs Docker and debootstrap if missing and starts dockerd if no
# engine answers). Every test must run: a skip fails the target. The migration tests run again on
# Postgres 17 when that image could be built. Ryuk (testcontainers' reaper) is an image from a
# registry, so it is off: the plugin removes its container itself. Containers are reached on
# loopback.
CONTAINER_TESTS := tests/checkpointers/test_conformance.py tests/checkpointers/test_sql_langgraph_conformance.py \
	tests/testing tests/migrations
CONTAINER_PYTEST := env -u FERROGRAPH_TEST_POSTGRES_URL TESTCONTAINERS_RYUK_DISABLED=true \
	TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 TESTCONTAINERS_CONNECTION_MODE=docker_host \
	PYTHONPATH=scripts $(PY) -m pytest -q -rs -p pytest_no_skips

test-containers: install-test
	scripts/postgres-image.sh 15 17
	$(CONTAINER_PYTEST) -o ferrograph_postgres_image=ferrograph-postgres:15 $(CONTAINER_TESTS) -k "postgres or not conformance"
	if docker image inspect ferrograph-postgres:17 >/dev/null 2>&1; then \
		$(CONTAINER_PYTEST) -o ferrograph_postgres_image=ferrograph-postgres:17 tests/migrations \
			tests/testing/test_postgres_fixture.py::test_the_session_server_answers; \
	fi

# Benchmarks need an optimised build; this rebuilds the extension in release mode.
bench: $(PY)
	$(VENV)/bin/maturin develop --quiet --release --extras bench
	$(PY) benchmarks/run.py
	$(PY) benchmarks/codec.py

clean:
	rm -rf $(VENV) target
