# mediakeep developer and CI entry points. `.ci/run` runs `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run test-deps lint test bench migrate

venv: $(STAMP)

# Re-installs only when pyproject.toml changes (or the venv is missing).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

run: venv
	$(BIN)/mediakeep migrate
	$(BIN)/mediakeep serve

migrate: venv
	$(BIN)/mediakeep migrate

# System packages the tests need (PostgreSQL, Redis, libmagic, espeak-ng); root + apt only.
test-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
			|| ! command -v redis-server >/dev/null 2>&1 \
			|| [ ! -e /usr/lib/x86_64-linux-gnu/libmagic.so.1 ] \
			|| ! command -v espeak-ng >/dev/null 2>&1; then \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get update && apt-get install -y -q postgresql redis-server libmagic1 espeak-ng; \
		fi; \
	fi

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: venv test-deps lint
	$(BIN)/pytest -q -ra

bench: venv
	$(BIN)/python bench/ingest.py
