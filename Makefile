# The two commands a newcomer needs: `make run` and `make test`. Both set everything up first.
PY := .venv/bin/python

.PHONY: setup run test unit integration lint bench clean compose-check

setup:
	@scripts/setup.sh

run: setup  ## the whole pipeline in local mode (no Docker); Ctrl-C stops it
	$(PY) -m localmode run

test: setup lint  ## lint, types, unit and integration tests (starts its own emulator, daemon and receiver)
	$(PY) -m pytest

unit: setup
	$(PY) -m pytest -m "not integration"

integration: setup
	$(PY) -m pytest -m integration

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

compose-check: setup  ## with Docker: compose up, wait for every service and an alert via Fluent Bit, scale, down
	@$(PY) scripts/compose_check.py $(ARGS)

bench: setup  ## figures for the notes (see bench/README.md)
	$(PY) -m bench.all

clean:
	rm -rf .run .venv jars/*.jar jars/.stamp
