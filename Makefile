# The two commands a newcomer needs: `make demo` and `make test`. Both set up the venv first when needed.
# MMFOCAL_WHEEL_DIR=DIR points the setup at a directory with a prebuilt mmcv 2.1.0 wheel.
# STACK=torch2.1 selects the second supported stack (torch 2.1.2, numpy<2) in its own venv, .venv-torch2.1.
STACK ?= torch2.14
VENV ?= $(if $(filter torch2.14,$(STACK)),.venv,.venv-$(STACK))
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test test-fast test-tools-e2e test-timm demo clean-demo

setup:
	MMFOCAL_STACK=$(STACK) VENV=$(VENV) bash tools/setup_env.sh

# E2E=split: all but the stack_e2e training runs, which CI runs on the second stack (make test-tools-e2e E2E=stack)
test: setup
	$(PY) -m pytest tests $(if $(filter split,$(E2E)),-m "not stack_e2e") $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)

# the tools' end-to-end runs (train, test, infer, resume, DDP, stock mm tools): the slow tests of tests/test_tools.py
# except the full `make demo` run (`make test` runs that one); E2E=stack: every test marked stack_e2e (the demos'
# training runs through tools/train.py: Mask R-CNN, UPerNet, RepPointsV2, classification fine-tuning; two seeded
# Mask R-CNN runs compared; a resumed run; DDP), what CI runs on the second stack on top of its fast suite and the
# default stack's `make test E2E=split` leaves out
E2E ?= all
E2E_MARK := $(if $(filter stack,$(E2E)),stack_e2e,slow and not demo)
E2E_PATHS := $(if $(filter stack,$(E2E)),tests,tests/test_tools.py)
test-tools-e2e: setup
	$(PY) -m pytest $(E2E_PATHS) -m "$(E2E_MARK)" $(PYTEST_ARGS)

demo: setup
	$(PY) tools/demo.py

clean-demo:
	rm -rf data/demo work_dirs/demo

# timm's own model test suite (tests/test_models.py of the installed timm, from its source distribution) on the
# nine mmfocal timm models; TorchScript tests deselected (tools/dev/timm_suite.sh)
test-timm: setup
	PY=$(PY) bash tools/dev/timm_suite.sh $(PYTEST_ARGS)
