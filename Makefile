# Set-up and entry points. `make test` and `make demo` work on a fresh machine:
# they create .venv, install the project, then run.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

MIN_VENV ?= .venv-min
MIN_PY   := $(MIN_VENV)/bin/python
MIN_STAMP := $(MIN_VENV)/.installed
# One test file per dependency the lower bounds must carry: the tiny fine-tune (transformers,
# peft, accelerate, DeepSpeed, bitsandbytes), loading and answering, merge, a converter.
MIN_TESTS := tests/train/test_train_end_to_end.py tests/model/test_lora_loading.py tests/eval/test_model_vqa.py \
	tests/scripts/test_merge_lora_weights.py tests/data/test_vqa.py tests/model/test_base_record.py

.PHONY: setup test test-fast test-min demo lint format patches clean

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

# The lower bounds of pyproject.toml (constraints/minimum.txt) in a second venv, on a subset that
# touches every dependency. torch is the version .venv has (see constraints/minimum.txt).
$(MIN_STAMP): pyproject.toml constraints/minimum.txt $(STAMP)
	rm -rf $(MIN_VENV)
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_PY) -m pip install -q --upgrade pip
	$(MIN_PY) -m pip install -q "torch==$$($(PY) -c 'import torch; print(torch.__version__.split("+")[0])')"
	$(MIN_PY) -m pip install -q -c constraints/minimum.txt -e ".[train,dev]"
	touch $(MIN_STAMP)

# DeepSpeed JIT-builds ops into TORCH_EXTENSIONS_DIR (default ~/.cache/torch_extensions): the
# older DeepSpeed keeps its own builds, or the main venv would load an op of another version.
test-min: $(MIN_STAMP)
	$(MIN_PY) -m pip list 2>/dev/null | grep -iE '^(torch|transformers|peft|accelerate|huggingface.hub|deepspeed|bitsandbytes) '
	TORCH_EXTENSIONS_DIR=$(abspath $(MIN_VENV))/torch_extensions OMP_NUM_THREADS=1 \
		$(MIN_PY) -m pytest -q -p no:cacheprovider $(MIN_TESTS)

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
	rm -rf $(VENV) $(MIN_VENV) .pytest_cache
