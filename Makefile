# The README's two commands: `make run` (the platform) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The browser tests (tests/browser) drive Debian's chromium by this path.
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test lint install clean browser containers

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The project's own bytecode, as pip writes it for a wheel: an editable install has none, and an agent in its
# sandbox (code read-only) or any process under PYTHONDONTWRITEBYTECODE=1 compiled every module at every start
# (20 agents at once: start p50 6.0 -> 4.8 s, docs/performance.md). Quick when nothing changed.
install: $(STAMP)
	$(BIN)/python -m compileall -q src

run: install
	$(BIN)/mtrobot up

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

# Debian's chromium for the browser tests, installed when missing (quiet, idempotent; root or sudo -n).
browser:
	@test -x $(CHROMIUM) || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=600 update >/dev/null && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get -qq -y -o DPkg::Lock::Timeout=600 \
	    install --no-install-recommends chromium >/dev/null; }
	@test -x $(CHROMIUM) || { echo "no chromium at $(CHROMIUM)"; exit 1; }

# Debian's podman and runc, so the container runtime of the agents is tested too (it is chosen first where
# it runs; without it, agents run in bubblewrap). Installed when missing, like chromium.
containers:
	@command -v podman >/dev/null && command -v runc >/dev/null || { \
	  echo "installing Debian's podman and runc for the agents' container runtime"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=600 update >/dev/null && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get -qq -y -o DPkg::Lock::Timeout=600 \
	    install --no-install-recommends podman runc >/dev/null; }
	@command -v podman >/dev/null && command -v runc >/dev/null || { echo "no podman and runc on PATH"; exit 1; }

test: lint browser containers
	MTROBOT_CHROMIUM=$(CHROMIUM) $(BIN)/pytest -n 2 --dist loadfile --durations=15

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
