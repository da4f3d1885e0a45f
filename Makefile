# Two commands for a newcomer: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export SURMESURE_DATABASE_URL ?= duckdb:///demo/surmesure.duckdb

.PHONY: system install demo test lint typecheck unit bench clean

# System packages the channels need: Kannel (the SMS gateway, with its test SMSC), Pango (PDF
# letters) and HarfBuzz's subsetter (a letter's PDF embeds only the glyphs it uses, in C);
# Chromium (the console's and the web script's browser tests drive it); ffmpeg and espeak-ng
# (personalized videos and their voice-over); fonts-dejavu-core (text drawn on video frames);
# and a Java runtime for Spark (derive and
# segments on Spark), unless one is on the PATH already. Installed only where missing.
SYSTEM_PACKAGES := kannel kannel-extras libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
	chromium ffmpeg espeak-ng fonts-dejavu-core
JAVA_PACKAGE := default-jre-headless
system:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v java >/dev/null 2>&1 || missing="$$missing $(JAVA_PACKAGE)"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,spark]'
	# GrowthBook's stats engine, a peer the statistics are checked against: its metadata
	# caps numpy below 2, which it runs fine on, so it is installed without its pins
	$(BIN)/pip install --quiet --no-deps gbstats==0.8.0
	touch $(STAMP)

install: system $(STAMP)

demo: system $(STAMP)
	$(BIN)/surmesure demo --customers 50000 --out demo

lint: system $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# the suite runs in TEST_WORKERS processes side by side, a test module's tests in one of them
# (TEST_WORKERS=0: in this process alone); more pytest options, e.g. PYTEST_ARGS="--durations=30"
# to see the slowest tests. Three processes on two cores: many tests wait on servers, browsers
# and killed processes, and the suite took 12.5 min with three against 17 with two.
TEST_WORKERS ?= 3
PYTEST_ARGS ?=
unit: $(STAMP)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,spark,peers]'
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_collect.py
	$(BIN)/python benchmarks/bench_generate.py
	$(BIN)/python benchmarks/bench_learn.py
	$(BIN)/python benchmarks/bench_uplift.py --out bench-out

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
