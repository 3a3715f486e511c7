# faultbed: `make run` runs the default test, `make test` runs the test suite.
VENV := .venv
PY := $(VENV)/bin/python
FAULTBED := $(VENV)/bin/faultbed
PYTEST_ARGS ?=

.PHONY: setup run test test-fast lint bench chaos images gc clean

setup:
	@scripts/setup

run: setup
	$(FAULTBED) run

test: setup images lint
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

lint: setup
	@scripts/typecheck

test-fast: setup
	$(PY) -m pytest -q -n 2 -m "not docker and not slow" $(PYTEST_ARGS)

bench: setup images
	$(PY) -m bench

chaos: setup
	$(PY) -m pytest -n 2 examples/chaos_suite

images: setup
	@scripts/images

gc: setup
	$(FAULTBED) gc

clean:
	rm -rf $(VENV) .tools store
