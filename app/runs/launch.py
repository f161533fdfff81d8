"""Creating a run from a launch request and handing it to a worker.

`create_run` validates everything a form can get wrong before a row exists, and names the field of
each problem (LaunchError.field), so the form can show the message next to it. The trainer config is
stored resolved: the run directory, the exported data files and the base model's path are filled in
here, so the config on the run page is exactly what the trainer read.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session

from app.core.config import get_settings
from app.core.db import session_scope
from app.datasets.catalog import without_reference
from app.datasets.versions import select_version
from app.jobs.lifecycle import new_job
from app.jobs.queue import enqueue_or_fail
from app.jobs.workers import queue_gpu_counts
from app.models import Dataset, DatasetKind, JobKind, Run, RunDataset, VersionStatus
from app.runs.hostfile import HostfileError, check_nodes, read_hostfile
from app.runs.rundir import EVAL_FILE, TRAIN_FILE, resolve_checkpoint, run_dir_for
from trainer.config import ConfigError, RunConfig, describe_fields

MAX_PROCS = 64
MAX_NODES = 1024
# Directories that are never shared between machines: a multi-node run's directory must not be under one.
NODE_LOCAL = (Path("/tmp"), Path("/dev/shm"))
# Ids and version numbers are 32-bit Integer columns: a larger value is "not found" without a query, as
# PostgreSQL would raise "out of range" for it (SQLite past 64 bits) instead of finding nothing.
MAX_ID = 2**31 - 1


@dataclass
class LaunchRequest:
    name: str
    owner_id: int
    config: dict  # RunConfig dict; data.train_file/eval_file/output_dir/model.path are filled by create_run
    datasets: list[tuple[int, int]]  # (dataset_id, version) to train on, >= 1
    eval_dataset: tuple[int, int] | None = None
    base_model: str = ""  # "" embedded | local path or hub id | "run:<id>/<checkpoint dir name>"
    queue: str = "cpu"
    n_gpus: int = 0  # 0 = CPU
    n_procs: int = 1  # CPU ranks (n_gpus > 0: ranks = n_gpus)
    num_nodes: int = 1  # > 1: over the hostfile's first num_nodes hosts, n_gpus on each
    hostfile: str = ""  # DeepSpeed hostfile, a path as the worker sees it
    form: dict = field(default_factory=dict)  # stored as form_json for clone
    parent_run_id: int | None = None
    sweep_id: int | None = None


class LaunchError(ValueError):
    """A request that cannot become a run; `field` names the form field ("datasets", "train.lr", ...)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# Where an error about a platform-filled field is shown on the form.
ERROR_FIELD = {
    "data.eval_file": "data.eval_fraction",  # its one check without files: exclusive with eval_fraction
    "data.train_file": "datasets",
    "data.mix": "mix",
    "model.path": "base_model",
    "output_dir": "form",
}
_NAMES = sorted((f["name"] for f in describe_fields()), key=len, reverse=True)


def field_of(message: str) -> str:
    """The form field a trainer ConfigError names (the first field mentioned), or "form"."""
    found = []
    for name in _NAMES:
        m = re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", message)
        if m:
            found.append((m.start(), name))
    if found:
        name = min(found)[1]
        return ERROR_FIELD.get(name, name)
    unknown = re.match(r"unknown key ([\w.]+)", message)  # a key no form offers: a direct caller's typo
    return unknown.group(1) if unknown else "form"


def resolve_base_model(session: Session, base_model: str) -> str:
    """The model.path the trainer gets: "" (embedded), a local directory, a hub id, or a run's checkpoint."""
    value = base_model.strip()
    if not value:
        return ""
    if value.startswith("run:"):
        try:
            return str(resolve_checkpoint(session, value))
        except ValueError as e:
            raise LaunchError("base_model", str(e)) from e
    path = Path(value).expanduser()
    # The trainer's rule: "org/name" is a hub id unless such a directory exists here.
    looks_local = value.startswith((".", "/", "~")) or path.exists() or value.count("/") != 1
    if not looks_local:
        return _hub_model(value)
    if not path.is_dir():
        raise LaunchError(
            "base_model", f"{value!r} is neither a local model directory nor an org/name hub id"
        )
    if not (path / "config.json").is_file():
        raise LaunchError("base_model", f"{value!r} has no config.json: not a Hugging Face model directory")
    return str(path.resolve())


def _hub_model(repo_id: str) -> str:
    """A hub id the workers can load: in the local Hugging Face cache, or downloads allowed by settings.

    Without this a typo (or a relative path like "models/llama" read as a hub id) was accepted and the run
    failed minutes later in the worker with a download traceback.
    """
    from huggingface_hub import try_to_load_from_cache

    if get_settings().hub_downloads or isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return repo_id
    raise LaunchError(
        "base_model",
        f"{repo_id!r} is not a local model directory and not in the Hugging Face cache; give a local path, "
        f"or download it first (huggingface-cli download {repo_id})",
    )


def _check_version(session: Session, fld: str, pair: Any) -> tuple[int, int]:
    try:
        dataset_id, version = (int(pair[0]), int(pair[1]))
    except (TypeError, ValueError, IndexError) as e:
        raise LaunchError(fld, f"expected (dataset id, version), got {pair!r}") from e
    in_range = 0 < dataset_id <= MAX_ID and 0 < version <= MAX_ID
    dataset = session.get(Dataset, dataset_id) if in_range else None
    if dataset is None:
        raise LaunchError(fld, f"dataset {dataset_id} does not exist")
    row = session.exec(select_version(dataset_id, version)).first()
    if row is None:
        raise LaunchError(fld, f"dataset {dataset.name!r} has no version {version}")
    if row.status == VersionStatus.failed:
        raise LaunchError(fld, f"version {version} of {dataset.name!r} failed to build: {row.error}")
    return dataset_id, version


def _check_references(session: Session, pair: tuple[int, int]) -> None:
    """An eval set validates on its references: one with none would give no validation loss."""
    dataset = session.get(Dataset, pair[0])
    if dataset is None or dataset.kind != DatasetKind.eval:
        return
    version = session.exec(select_version(pair[0], pair[1])).first()
    missing = without_reference(session, dataset_id=pair[0], version=pair[1])
    if version is not None and missing >= version.n_samples:
        raise LaunchError(
            "eval_dataset",
            f"no sample of {dataset.name!r} v{pair[1]} has a reference answer to validate on;"
            " import it with a reference field, or hold out a fraction of the training data",
        )


def _check_resources(req: LaunchRequest) -> None:
    queues = get_settings().run_queues
    if req.queue not in queues:
        raise LaunchError("queue", f"no worker serves queue {req.queue!r} (queues: {', '.join(queues)})")
    if not 0 <= req.n_gpus <= MAX_PROCS:
        raise LaunchError("n_gpus", f"number of GPUs must be between 0 and {MAX_PROCS}, got {req.n_gpus}")
    if req.n_gpus == 0 and not 1 <= req.n_procs <= MAX_PROCS:
        raise LaunchError("n_procs", f"CPU processes must be between 1 and {MAX_PROCS}, got {req.n_procs}")


def _check_gpus(session: Session, req: LaunchRequest) -> str:
    """Refuse GPUs the queue's live workers do not have; "" or a warning when no worker reported yet.

    Only one-host runs: a multi-node run's GPUs are the hostfile's, which _check_nodes checks.
    """
    if req.n_gpus == 0 or req.num_nodes > 1:
        return ""
    counts = queue_gpu_counts(session, req.queue)
    if not counts:
        # A fresh start: refusing would block every launch until a worker is up. The worker checks again.
        return f"no worker of queue {req.queue} has reported its GPUs yet; the worker checks them at start"
    if max(counts) == 0:
        raise LaunchError(
            "n_gpus",
            f"queue {req.queue} has no worker with GPUs: launch on a GPU queue, or with 0 GPUs (CPU)",
        )
    if req.n_gpus > max(counts):
        raise LaunchError("n_gpus", f"queue {req.queue} has workers with at most {max(counts)} GPUs")
    return ""


def _check_nodes(req: LaunchRequest) -> None:
    """A multi-node run: a hostfile with enough hosts and slots, and a run directory every node can reach."""
    if not 1 <= req.num_nodes <= MAX_NODES:
        raise LaunchError("num_nodes", f"nodes must be between 1 and {MAX_NODES}, got {req.num_nodes}")
    if req.num_nodes == 1 and not req.hostfile:
        return
    if req.n_gpus == 0:
        raise LaunchError("n_gpus", "a run over several nodes trains on GPUs: give the GPUs per node")
    if not req.hostfile:
        raise LaunchError("hostfile", "a run over several nodes needs a hostfile (its path on the worker)")
    if not Path(req.hostfile).is_absolute():
        raise LaunchError("hostfile", f"{req.hostfile[:200]!r}: give an absolute path, as the worker sees it")
    runs_dir = get_settings().runs_dir.resolve()
    if any(runs_dir.is_relative_to(local) for local in NODE_LOCAL):
        raise LaunchError(
            "num_nodes",
            f"run directories are under {runs_dir}, which other nodes cannot see: set SFTLAB_DATA_DIR to a "
            "filesystem every node shares",
        )
    if Path(req.hostfile).exists():  # else it exists on the worker only, which checks it at start
        try:
            check_nodes(read_hostfile(req.hostfile), num_nodes=req.num_nodes, n_gpus=req.n_gpus)
        except HostfileError as exc:
            raise LaunchError("hostfile", str(exc)) from None


def _resolved_config(raw: dict, *, run_dir: str, has_eval: bool, model_path: str) -> dict:
    if not isinstance(raw, dict):
        raise LaunchError("config", "the trainer config must be an object")
    cfg: dict[str, Any] = copy.deepcopy(raw)
    data = cfg.setdefault("data", {})
    if not isinstance(data, dict):
        raise LaunchError("data", "data: expected an object")
    if has_eval and float(data.get("eval_fraction") or 0) > 0:
        raise LaunchError("data.eval_fraction", "choose an eval dataset or an eval fraction, not both")
    data["train_file"] = str(Path(run_dir) / TRAIN_FILE)
    data["eval_file"] = str(Path(run_dir) / EVAL_FILE) if has_eval else ""
    cfg["output_dir"] = run_dir
    model = cfg.setdefault("model", {})
    if not isinstance(model, dict):
        raise LaunchError("model", "model: expected an object")
    model["path"] = model_path
    checkpoint = cfg.setdefault("checkpoint", {})
    if isinstance(checkpoint, dict):
        checkpoint["resume"] = False  # a fresh run; lifecycle.resume() turns it on
    try:
        return RunConfig.from_dict(cfg).validate(check_files=False).to_dict()
    except ConfigError as e:
        raise LaunchError(field_of(str(e)), str(e)) from e


def create_run(session: Session, req: LaunchRequest) -> Run:
    """Validate, then insert the Run, its queued Job and its RunDataset rows and flush; no commit, no enqueue."""
    name = req.name.strip()
    if not name:
        raise LaunchError("name", "give the run a name")
    if len(name) > 200:
        raise LaunchError("name", "the name is longer than 200 characters")
    if not req.datasets:
        raise LaunchError("datasets", "choose at least one dataset version to train on")
    train = [_check_version(session, "datasets", pair) for pair in req.datasets]
    if len(set(train)) != len(train):
        raise LaunchError("datasets", "the same dataset version is chosen twice")
    eval_pair = _check_version(session, "eval_dataset", req.eval_dataset) if req.eval_dataset else None
    if eval_pair is not None:
        _check_references(session, eval_pair)
    _check_resources(req)
    _check_nodes(req)
    warning = _check_gpus(session, req)
    parent = req.parent_run_id
    if parent is not None and (not 0 < parent <= MAX_ID or session.get(Run, parent) is None):
        raise LaunchError("parent_run_id", f"run {parent} (the run this one is cloned from) does not exist")
    model_path = resolve_base_model(session, req.base_model)
    # Validate with a placeholder directory first: the real one needs the run's id.
    _resolved_config(req.config, run_dir="/run", has_eval=eval_pair is not None, model_path=model_path)
    job = new_job(
        session, kind=JobKind.train, owner_id=req.owner_id, queue=req.queue, title=name, unit="steps"
    )
    assert job.id is not None
    job.stage = warning[:100]
    run = Run(
        name=name,
        owner_id=req.owner_id,
        job_id=job.id,
        n_gpus=req.n_gpus,
        n_procs=req.n_gpus if req.n_gpus > 0 else req.n_procs,
        num_nodes=req.num_nodes,
        hostfile=req.hostfile,
        base_model=req.base_model.strip(),
        parent_run_id=req.parent_run_id,
        sweep_id=req.sweep_id,
        form_json=json.dumps(req.form, ensure_ascii=False),
        config_json="{}",
    )
    session.add(run)
    session.flush()
    assert run.id is not None
    run.run_dir = str(run_dir_for(run.id))
    config = _resolved_config(
        req.config, run_dir=run.run_dir, has_eval=eval_pair is not None, model_path=model_path
    )
    run.config_json = json.dumps(config, ensure_ascii=False)
    for dataset_id, version in train:
        session.add(RunDataset(run_id=run.id, dataset_id=dataset_id, version=version, role="train"))
    if eval_pair is not None:
        session.add(RunDataset(run_id=run.id, dataset_id=eval_pair[0], version=eval_pair[1], role="eval"))
    session.flush()
    return run


def enqueue_run(session: Session, run: Run) -> str:
    """Send the (committed) run's job to its queue; "" when sent, else why not (the run is then failed)."""
    message = enqueue_or_fail(session, run.job)
    return message.replace("the job was not started", "the run was not started")


def launch(req: LaunchRequest) -> int:
    """create_run + commit + enqueue; returns the run id. LaunchError(field="queue") if nothing was queued."""
    with session_scope() as session:
        run = create_run(session, req)
        session.commit()
        assert run.id is not None
        if message := enqueue_run(session, run):
            raise LaunchError("queue", message)
        return run.id
