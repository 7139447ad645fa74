# Quick start: `make demo` grades the bundled examples, `make test` runs the suite.
# Both create .venv and install what they need into it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The course machines carry these builds locally; pyproject.toml declares the accepted ranges.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DEMO_OUT ?= demo-out

.PHONY: demo test test-fast bench gpu-wheels setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "error: $(PYTHON) is older than 3.11; run: make PYTHON=python3.11 ..."; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c 'import torch, torchvision' 2>/dev/null || $(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[test,slurm,ray]'
	@touch $(STAMP)

# Every assignment with example submissions, graded on the quick profile (synthetic data when the
# real data sets are not in $GRADER_DATA); one index page links the batches.
ASSIGNMENTS ?= $(sort $(patsubst submissions/%/expected.yaml,%,$(wildcard submissions/*/expected.yaml)))

demo: $(STAMP)
	@for id in $(ASSIGNMENTS); do \
		echo "== $$id"; \
		$(BIN)/grader grade $$id submissions/$$id --out $(DEMO_OUT)/$$id --profile quick --quiet || exit $$?; \
	done
	@echo
	@$(BIN)/grader index $(DEMO_OUT)

# Two workers, a module each at a time (module fixtures such as the graded examples run once):
# the examples' pool keeps both cores busy, the rest of the suite fills the gaps (CI has 2 cores).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadscope --durations=15

bench: $(STAMP)
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/startup.py

# The wheels bench/gpu/run.sh installs on a GPU machine without a network (its python 3.12 has torch
# and the scientific stack; these are the grader's own dependencies it lacks). Carry .gpu-wheels there.
GPU_WHEEL_PLATFORMS := --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
gpu-wheels: $(STAMP)
	rm -rf .gpu-wheels
	$(BIN)/python -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
		$(GPU_WHEEL_PLATFORMS) -d .gpu-wheels pydantic nbclient nbformat ipykernel copydetect
	cd .gpu-wheels && rm -f numpy-* matplotlib-* pillow-* fonttools-* contourpy-* kiwisolver-* scipy-*
	@du -sh .gpu-wheels

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
