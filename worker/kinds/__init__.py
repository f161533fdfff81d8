"""The job kinds this worker can run, by name.

A kind is a JobKindSpec (worker.runner) registered here. The built-in kinds are imported on first use;
modules named in SFTLAB_JOB_KINDS are imported too, so a deployment (or a test) can add a kind without
touching this package. Adding one is a subclass of JobKindSpec and a `register` call: the README shows
one in seven lines, and tests/worker/test_readme_kind.py runs that very example.
"""

from __future__ import annotations

import importlib
import threading

from app.core.config import get_settings
from worker.runner import JobKindSpec

BUILT_IN = (
    "worker.kinds.train",
    "worker.kinds.estimate",
    "worker.kinds.render",
    "worker.kinds.imports",
    "worker.kinds.index",
    "worker.kinds.sample",
    "worker.kinds.judge",
)

_KINDS: dict[str, JobKindSpec] = {}
_LOADED: set[str] = set()
_LOCK = threading.Lock()


def register(spec: JobKindSpec) -> JobKindSpec:
    if not spec.kind:
        raise ValueError(f"{type(spec).__name__} has no kind")
    _KINDS[spec.kind] = spec
    return spec


def spec_for(kind: str) -> JobKindSpec:
    """The spec of `kind`; KeyError (with a message for the job's error) when no module registers it."""
    with _LOCK:
        for module in (*BUILT_IN, *get_settings().job_kinds):
            if module not in _LOADED:
                importlib.import_module(module)
                _LOADED.add(module)
    if kind not in _KINDS:
        raise KeyError(f"no job kind {kind!r} on this worker (kinds: {', '.join(sorted(_KINDS))})")
    return _KINDS[kind]
