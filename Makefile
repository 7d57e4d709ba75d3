# wheels-etl: every target creates the virtual environment first (Python >= 3.11).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
ETL    := $(BIN)/wheels-etl
ARGS   ?=

.PHONY: help venv demo extract load migrate status inspect replay prune lint test \
        test-fast bench bench-quick clean clean-spool

help:
	@echo "make demo         extract the sample collection, load it, show status"
	@echo "make test         lint (ruff), type-check (mypy --strict) and run every test"
	@echo "make extract      wheels-etl extract   (ETL_SOURCE_URL, ETL_SOURCE_TOKEN, ETL_SPOOL_DIR)"
	@echo "make load         wheels-etl load      (DATABASE_URL; unset = embedded Postgres)"
	@echo "make status | inspect | replay | prune | migrate   (pass flags with ARGS='...')"
	@echo "make lint         ruff + mypy --strict + hadolint (Containerfile)"
	@echo "make bench-quick  short benchmark run (< 2 min) -> benchmarks/REPORT.md"
	@echo "make bench        full benchmark run             -> benchmarks/REPORT.md"

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "wheels-etl needs Python >= 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(ETL) extract $(ARGS)
	$(ETL) load
	$(ETL) status

extract: venv
	$(ETL) extract $(ARGS)

load: venv
	$(ETL) load $(ARGS)

migrate: venv
	$(ETL) migrate $(ARGS)

status: venv
	$(ETL) status $(ARGS)

inspect: venv
	$(ETL) inspect $(ARGS)

# make replay            -> replay every failed file
# make replay ARGS=FILE  -> replay one file
replay: venv
	$(ETL) replay $(if $(ARGS),$(ARGS),--failed)

prune: venv
	$(ETL) prune $(if $(ARGS),$(ARGS),--older-than 7d)

lint: venv
	$(BIN)/ruff check etl tests benchmarks samples
	$(BIN)/mypy --strict etl tests benchmarks
	$(BIN)/hadolint Containerfile

test: lint
	$(BIN)/pytest -q $(ARGS)

test-fast: venv
	$(BIN)/pytest -q -m "not slow" $(ARGS)

bench-quick: venv
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.run --quick

bench: venv
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.run

clean-spool:
	rm -rf spool

# stop the embedded PostgreSQL first: its binary lives in the venv about to be deleted
clean:
	-test -x $(ETL) && $(ETL) db stop
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
