# The two commands a newcomer needs: `make run` and `make test`. Both set up what they need first.
PY := .venv/bin/python
# Two pytest-xdist workers, one test file each at a time (each worker has its own session emulator, receiver and
# daemon on free ports): the integration tests mostly wait on the KCL's and Slack's timers, so two files overlap well
# even on 2 cores. In collection order, so the long integration files start first.
PARALLEL := -n 2 --dist loadfile --no-loadscope-reorder

.PHONY: setup setup-test run test unit integration lint bench clean compose-check

setup:  ## what running needs: KCL jars, a venv with the runtime packages
	@scripts/setup.sh run

setup-test:  ## and the test toolchain (pytest, linters, awscli, compose checks)
	@scripts/setup.sh test

run: setup  ## the whole pipeline in local mode (no Docker); Ctrl-C stops it, the next run resumes (FRESH=1: start empty)
	@$(PY) -m localmode run $(if $(FRESH),--fresh)

test: setup-test lint  ## lint, types, unit and integration tests (starts its own emulator, daemon and receiver)
	$(PY) -m pytest $(PARALLEL)

unit: setup-test
	$(PY) -m pytest $(PARALLEL) -m "not integration"

integration: setup-test
	$(PY) -m pytest $(PARALLEL) -m integration

lint: setup-test
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m mypy scripts/compose_check.py

compose-check:  ## with Docker: compose up, wait for every service and an alert via Fluent Bit, scale, down
	@python3 scripts/compose_check.py $(ARGS)

bench: setup-test  ## figures for the notes (see bench/README.md)
	$(PY) -m bench.all

clean:  ## everything generated: local mode's saved state and logs (.run), the venv, the jars
	rm -rf .run .venv jars/*.jar jars/.stamp jars/.launcher-stamp jars/*.jsa jars/.cds-stamp
