"""Model references a sampling job accepts, resolved to a model directory the worker can load.

- `run:<id>/step-N`: that checkpoint of a run (trainer.layout's rule: only complete ones count);
- `run:<id>`: the run's latest complete checkpoint, fixed at launch so a resume samples the same model;
- `embedded`: the embedded model's converted directory (settings.model_dir);
- a local directory with config.json (a full model) or adapter_config.json (a LoRA adapter, merged by the
  sampling program).
Anything else is refused with the reason (a 422), not found by the worker minutes later.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlmodel import Session

from app.core.config import Settings
from app.models import Run
from app.runs.rundir import resolve_checkpoint
from app.sampling.request import SamplingError
from trainer.layout import latest_checkpoint

_LATEST = re.compile(r"^run:(\d+)/?$")
EMBEDDED = "embedded"


def _model_dir(path: Path, ref: str) -> str:
    if not path.is_dir():
        raise SamplingError("model", f"{ref!r} is not a directory")
    if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        raise SamplingError("model", f"{ref!r} has neither config.json nor adapter_config.json: not a model")
    return str(path.resolve())


def resolve_model(session: Session, *, ref: str, settings: Settings) -> str:
    """The absolute model directory `ref` names; SamplingError (field "model") saying what is wrong."""
    ref = ref.strip()
    if ref == EMBEDDED:
        if not (settings.model_dir / "config.json").is_file():
            raise SamplingError(
                "model",
                f"the embedded model is not converted at {settings.model_dir}; run `make model` first",
            )
        return str(settings.model_dir.resolve())
    if m := _LATEST.match(ref):
        run = session.get(Run, int(m.group(1)))
        if run is None or not run.run_dir:
            raise SamplingError("model", f"run {m.group(1)} does not exist")
        latest = latest_checkpoint(run.run_dir)
        if latest is None:
            raise SamplingError("model", f"run {run.id} has no complete checkpoint yet")
        return _model_dir(latest, ref)
    if ref.startswith("run:"):
        try:
            return _model_dir(resolve_checkpoint(session, ref), ref)
        except ValueError as exc:
            raise SamplingError("model", str(exc)) from None
    path = Path(ref).expanduser()
    if not path.is_absolute():
        raise SamplingError("model", f"{ref!r}: give run:<id>/step-N, run:<id>, embedded or an absolute path")
    return _model_dir(path, ref)
