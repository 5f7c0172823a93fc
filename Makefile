# Set-up and entry points. `make test` and `make demo` work on a fresh machine:
# they create .venv, install the project, then run.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test test-fast demo lint format patches clean

setup: $(STAMP)

# Never replaces a torch that is already importable in the venv. Without CUDA
# it pins the CPU build (any other spec pulls a multi-GB CUDA wheel).
# torchvision is deliberately not installed: it breaks torch on CPU machines.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@if $(PY) -c "import torch" 2>/dev/null; then \
		echo "setup: keeping installed torch $$($(PY) -c 'import torch; print(torch.__version__)')"; \
	elif command -v nvidia-smi >/dev/null 2>&1; then \
		$(PY) -m pip install -q torch; \
	else \
		$(PY) -m pip install -q torch==2.13.0; \
	fi
	$(PY) -m pip install -q -e ".[train,dev,serve,browser]"
	touch $(STAMP)

test: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q tests llava

test-fast: setup
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m "not slow" tests llava

demo: setup
	bash scripts/finetune_qlora_okvqa.sh

lint: setup
	$(PY) -m ruff check llava tests scripts
	$(PY) -m ruff format --check llava tests scripts

# Rewrite the tree in the house format (what `make lint` checks).
format: setup
	$(PY) -m ruff format llava tests scripts

# Regenerate patches/*.patch after touching patch code (tests/test_patches.py checks them).
patches: setup
	$(PY) scripts/make_patches.py

clean:
	rm -rf $(VENV) .pytest_cache
