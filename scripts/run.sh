#!/usr/bin/env bash
# Starts a Celery worker and the web server on the configured (by default embedded) services.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin
HOST="${SFTLAB_HOST:-127.0.0.1}"
PORT="${SFTLAB_PORT:-8000}"
"$PY/celery" -A worker.celery_app worker -P threads -c 2 -Q "${SFTLAB_QUEUES:-default}" --loglevel WARNING &
WORKER=$!
trap 'kill $WORKER 2>/dev/null || true' EXIT INT TERM
echo "sftlab is running at http://$HOST:$PORT  (worker pid $WORKER; Ctrl-C stops both)"
"$PY/uvicorn" app.main:app --host "$HOST" --port "$PORT" --log-level warning
