"""What a job's subprocess may see of the worker's environment.

The trainer, the estimate and other job programs need PATH, PYTHONPATH, the CUDA and thread
variables and the model cache; they never need the web server's secret key, the database or the
broker. A child inherits everything by default, and a trainer runs user-chosen models and
templates, so the secrets are taken out here, once, for every kind (the runner applies it too).
"""

import os
import re
from collections.abc import Mapping

# SFTLAB_* settings a child may keep: where models are cached, nothing that grants access.
KEEP = {"SFTLAB_MODEL_DIR"}
# Anything that is or carries a credential of the deployment: our settings, database and broker
# URLs, PostgreSQL's password variables.
_SECRET = re.compile(
    r"^(SFTLAB_.*|DATABASE_URL|.*_DATABASE_URL|BROKER_URL|.*_BROKER_URL|REDIS_URL|CELERY_.*|"
    r"PG(PASSWORD|PASSFILE|SERVICE|HOST|USER|DATABASE)|POSTGRES_.*)$"
)


def is_secret(name: str) -> bool:
    return name not in KEEP and bool(_SECRET.match(name.upper()))


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) without the deployment's secrets."""
    source = os.environ if base is None else base
    return {key: value for key, value in source.items() if not is_secret(key)}
