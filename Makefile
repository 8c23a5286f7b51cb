# The two commands of the README: `make run` (the watched intake and the web app on embedded
# defaults) and `make test` (the whole suite). Both install what is missing first and are safe to repeat.

VENV ?= .venv
PYTHON ?= python3
APT_PACKAGES := tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd poppler-utils qpdf fonts-dejavu-core
# The browser tests drive Debian's Chromium with Playwright's Python package (no browser download).
TEST_APT_PACKAGES := chromium
# axe-core (the accessibility check of the browser tests) from the npm registry, into tests/support/axe.
AXE := tests/support/axe/node_modules/axe-core/axe.min.js

.PHONY: run test test-postgres soak system-deps bench performance-doc clean-venv

system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c "import ensurepip" >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "escr needs Debian packages that are not installed. Run:"; \
	    echo "    sudo apt-get install -y$$missing"; \
	    exit 1; \
	  fi; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

# `escr run`: the intake watcher (its own process) and the web app on web.host:web.port; Ctrl-C stops both.
run: system-deps $(VENV)/.installed
	$(VENV)/bin/escr run

test test-postgres: APT_PACKAGES += $(TEST_APT_PACKAGES)

# `make test` runs on SQLite, and on PostgreSQL too when ESCR_TEST_DATABASE_URL names a server
# (each test gets its own database there: see tests/support/databases.py). `make test-postgres` makes sure a
# PostgreSQL server is running (starting or installing it: .ci/services) and runs the suite on it.
$(AXE): tests/support/axe/package.json
	@command -v npm >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }
	npm install --prefix tests/support/axe --no-audit --no-fund --silent
	touch $@

test: system-deps $(VENV)/.installed $(AXE)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-postgres: system-deps $(VENV)/.installed $(AXE)
	exports=$$(.ci/services postgresql) && eval "$$exports" && $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# `make soak` (docs/operations.md, "Soak test"): tests/test_soak.py for SOAK_SECONDS of load (the short
# form of a few files runs in `make test`). Needs Redis on 127.0.0.1:6379; on PostgreSQL too when
# ESCR_TEST_DATABASE_URL names a server. Its figures are written as JSON to SOAK_REPORT, kept as
# bench/results/soak/<date>-<time>-<commit>.json (commit it to publish the run) and docs/soak.md is
# regenerated from every file there.
SOAK_SECONDS ?= 600
SOAK_REPORT ?= var/soak-report.json
soak: system-deps $(VENV)/.installed
	mkdir -p $(dir $(SOAK_REPORT)) && ESCR_SOAK_SECONDS=$(SOAK_SECONDS) ESCR_SOAK_REPORT=$(abspath $(SOAK_REPORT)) \
	  $(VENV)/bin/python -m pytest -q -m soak tests/test_soak.py $(PYTEST_ARGS)
	$(VENV)/bin/python -m bench.soak_report --keep $(SOAK_REPORT)

# `make bench` (bench/README.md): throughput against Tesseract alone and OCRmyPDF, memory,
# retrieval latency on PostgreSQL, Celery scaling. OCRmyPDF and py-spy live in their own venv,
# never in escr's. Options as make variables, e.g. `make bench BENCH_PAGES=8 BENCH_SEED_DOCS=20000`
# (all listed in bench/config.py). The run's JSON is kept in bench/results/ and docs/performance.md
# is regenerated from every JSON file there; `make performance-doc` regenerates it alone.
BENCH_VENV ?= .bench-venv
BENCH_APT_PACKAGES := ghostscript

$(BENCH_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --upgrade pip
	$(BENCH_VENV)/bin/pip install -q 'ocrmypdf>=16' 'py-spy>=0.3'
	touch $@

bench:
	@$(MAKE) --no-print-directory system-deps APT_PACKAGES="$(APT_PACKAGES) $(BENCH_APT_PACKAGES)"
	@$(MAKE) --no-print-directory $(VENV)/.installed $(BENCH_VENV)/.installed
	$(VENV)/bin/python -m bench

performance-doc: $(VENV)/.installed
	$(VENV)/bin/python -m bench.performance

clean-venv:
	rm -rf $(VENV)
