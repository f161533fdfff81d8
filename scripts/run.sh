#!/usr/bin/env bash
# Starts the Celery workers and the web server on the configured (by default embedded) services.
# Three workers: one for imports and indexing; one for training runs, which hold a slot for their whole
# length and so must not starve imports; one for the short jobs a page waits for (estimates, sample
# renderings), which must never wait behind an import. SFTLAB_RUN_QUEUES_SERVED picks the run queues.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin
HOST="${SFTLAB_HOST:-127.0.0.1}"
PORT="${SFTLAB_PORT:-8000}"
"$PY/celery" -A worker.celery_app worker -P threads -c 2 -Q "${SFTLAB_QUEUES:-default}" -n "jobs@%h" --loglevel WARNING &
WORKER=$!
"$PY/celery" -A worker.celery_app worker -P threads -c 1 -Q "${SFTLAB_RUN_QUEUES_SERVED:-cpu}" -n "runs@%h" --loglevel WARNING &
RUN_WORKER=$!
"$PY/celery" -A worker.celery_app worker -P threads -c 2 -Q interactive -n "interactive@%h" --loglevel WARNING &
SHORT_WORKER=$!
trap 'kill $WORKER $RUN_WORKER $SHORT_WORKER 2>/dev/null || true' EXIT INT TERM
echo "sftlab is running at http://$HOST:$PORT  (workers $WORKER, $RUN_WORKER, $SHORT_WORKER; Ctrl-C stops all)"
"$PY/uvicorn" app.main:app --host "$HOST" --port "$PORT" --log-level warning
