# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv first when needed.
# MMFOCAL_WHEEL_DIR=DIR points the setup at a directory with a prebuilt mmcv 2.1.0 wheel.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test test-fast demo clean-demo

setup:
	VENV=$(VENV) bash tools/setup_env.sh

test: setup
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)

demo: setup
	$(PY) tools/demo.py

clean-demo:
	rm -rf data/demo work_dirs/demo
