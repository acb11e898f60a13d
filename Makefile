# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench install dev-install system-deps clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

dev-install: $(VENV)/.dev-installed

# Debian's chromium for the dashboard's real-browser test; skipped (with a stated reason in
# the test) where apt cannot install it.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed; browser tests will be skipped"; \
	  else echo "chromium missing and apt-get unavailable; browser tests will be skipped"; fi; }

demo: $(VENV)/.installed
	$(BIN)/retailflow demo

test: $(VENV)/.dev-installed system-deps
	$(BIN)/python -m pytest -n 2 -q

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/pipeline.py --line-items 1000000

clean:
	rm -rf $(VENV) work
