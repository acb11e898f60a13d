# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-spark-full bench install dev-install system-deps clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed | system-deps
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

dev-install: $(VENV)/.dev-installed

# Debian's chromium for the dashboard's real-browser test (skipped, with a stated reason in the
# test, where apt cannot install it), libmariadb-dev + pkg-config, which the MySQL driver
# (mysqlclient) compiles against, and Java 17 for PySpark.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	dpkg -s libmariadb-dev >/dev/null 2>&1 || missing="$$missing libmariadb-dev"; \
	command -v pkg-config >/dev/null 2>&1 || missing="$$missing pkg-config"; \
	command -v java >/dev/null 2>&1 || missing="$$missing openjdk-17-jre-headless"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "could not install$$missing; the tests that need them will fail or be skipped"; \
	  else echo "missing$$missing and apt-get unavailable; the tests that need them will fail or be skipped"; fi; \
	fi

demo: $(VENV)/.installed
	$(BIN)/retailflow demo

test: system-deps $(VENV)/.dev-installed
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/pipeline.py --line-items 1000000

# The whole loop on Spark beside DuckDB (parity): the sample and the generated shop on a local session, the sample
# on a standalone cluster (a master and two workers) and through a Spark Connect server, each started by the
# tests; 15-25 minutes on 2 cores, beside what `make test` runs.
test-spark-full: $(VENV)/.dev-installed
	RETAILFLOW_TEST_SPARK_FULL=1 $(BIN)/python -m pytest tests/test_pyspark.py -q

clean:
	rm -rf $(VENV) work
