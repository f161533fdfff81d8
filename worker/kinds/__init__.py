"""The job kinds this worker can run, by name.

A kind is a JobKindSpec (worker.runner) registered here. The built-in kinds are imported on first use;
modules named in SFTLAB_JOB_KINDS are imported too, so a deployment (or a test) can add a kind without
touching this package. Adding one is a subclass and a `register` call:

    class Echo(JobKindSpec):
        kind = "echo"

        def prepare(self, ctx):
            script = ctx.root / "echo.py"
            script.write_text("import json; print(json.dumps({'type': 'done'}))")
            argv = [sys.executable, str(script)]
            return Command(argv, env=dict(os.environ), cwd=str(ctx.root), marker=str(script))

    register(Echo())
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
