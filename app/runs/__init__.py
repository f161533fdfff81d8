"""Training runs from the browser: launch form, worker execution, live metrics, sweeps.

The web server never trains: it stores a Run row and enqueues `runs.execute` on the run's
queue; a Celery worker exports the data, starts `trainer.train` as a subprocess in its own
process group, and copies every line of metrics.jsonl into RunEvent. Pages read only the
database (and the run directory for logs and checkpoints).
"""
